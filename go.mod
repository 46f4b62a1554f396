module github.com/convoykit/convoy

go 1.24

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/google/uuid v1.6.0
)
