package jsonvalid

import (
	"encoding/json"
	"strings"
	"testing"
)

var cases = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `01`, `1.`, `.5`, `1.5e10`, `1E+2`, `1e`, `-`, `--1`, `+1`,
	`true`, `tru`, `truex`, `null`, `nul`, `false `, ` {"a":1} `, `{"a":1,}`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`,
	`{a:1}`, `{"a":1 "b":2}`, `[1 2]`, `"\u00e9"`, `"\u00g9"`, `"\x"`, `"\/"`, "\"tab\there\"", `"a`,
	`{"a":[{"b":null}],"c":"d"}`, `[[[[[]]]]]`, `1 2`, `{}{}`, "\"\xff\"", "\"\xc3\xa9\"", `"\uD834\uDD1E"`,
	`123456789012345678901234567890`, `-12.5e-3`, `[true,false,null]`, "{\"a\":1}\n", `{"":0}`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%.40q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := Valid(data), json.Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", data, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	body := []byte(`{"seq":"0000000042","sent":"1764331234567890123","customer":{"name":"Ada","email":"ada@example.com"},"items":[1,2,3.5,true,null],"pad":"` +
		strings.Repeat("x", 800) + `"}`)
	for _, impl := range []struct {
		name  string
		valid func([]byte) bool
	}{{"encoding/json", json.Valid}, {"jsonvalid", Valid}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if !impl.valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
