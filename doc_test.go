package convoy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryExportedNameHasADocComment walks the library's packages (the
// root and the stores) and lists exported names without a doc comment, as
// go doc -all would show them.
func TestEveryExportedNameHasADocComment(t *testing.T) {
	var missing []string
	for _, dir := range []string{".", "store/memory", "store/bolt", "store/storetest", "convoyui"} {
		fset := token.NewFileSet()
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
			require.NoError(t, err)
			missing = append(missing, undocumented(fset, name, f)...)
		}
	}
	require.Empty(t, missing, "exported names without a doc comment")
}

func undocumented(fset *token.FileSet, file string, f *ast.File) []string {
	var out []string
	report := func(pos token.Pos, name string) {
		out = append(out, file+":"+itoa(fset.Position(pos).Line)+" "+name)
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || d.Doc != nil {
				continue
			}
			if d.Recv != nil && !exportedRecv(d.Recv) {
				continue
			}
			report(d.Pos(), d.Name.Name)
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && d.Doc == nil && s.Doc == nil {
						report(s.Pos(), s.Name.Name)
					}
					if st, ok := s.Type.(*ast.StructType); ok && s.Name.IsExported() {
						for _, fld := range st.Fields.List {
							for _, n := range fld.Names {
								if n.IsExported() && fld.Doc == nil && fld.Comment == nil && !groupedField(st, fld) {
									report(n.Pos(), s.Name.Name+"."+n.Name)
								}
							}
						}
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
							report(n.Pos(), n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

// groupedField reports whether a field without its own comment follows a
// commented field in the same run of lines (a documented group such as
// "CreatedAt and UpdatedAt are set by ...").
func groupedField(st *ast.StructType, fld *ast.Field) bool {
	var prev *ast.Field
	for _, f := range st.Fields.List {
		if f == fld {
			break
		}
		prev = f
	}
	for prev != nil {
		if prev.Doc != nil || prev.Comment != nil {
			return true
		}
		// walk further back while fields are undocumented
		var before *ast.Field
		for _, f := range st.Fields.List {
			if f == prev {
				break
			}
			before = f
		}
		prev = before
	}
	return false
}

func exportedRecv(fl *ast.FieldList) bool {
	if len(fl.List) == 0 {
		return false
	}
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.IsExported()
	}
	return true
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}
