package bolt_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/convoykit/convoy/store/bolt"
)

// Reclaiming the space of deleted events: close the store, compact the
// file into a new one, put the copy in place and open it again.
func ExampleCompact() {
	dir, err := os.MkdirTemp("", "convoy")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "convoy.db")

	st, err := bolt.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	// ... the dispatcher runs; retention deletes old events ...
	if err := st.Close(); err != nil {
		log.Fatal(err)
	}

	if err := bolt.Compact(path, path+".compact", nil); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(path+".compact", path); err != nil {
		log.Fatal(err)
	}
	st, err = bolt.Open(path, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	fmt.Println("compacted")
	// Output: compacted
}
