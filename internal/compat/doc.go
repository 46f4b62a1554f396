// Package compat checks convoy's Standard Webhooks signatures against the
// reference libraries: the Standard Webhooks Go library and Svix's Go
// library. It is a module of its own so that those libraries stay out of
// convoy's go.mod. Run it with:
//
//	cd internal/compat && go test ./...
package compat
