package ingest

// Key exposes the identity hash to the tests.
var Key = key
