package tailer

import "fmt"

// notRegularError refuses a FIFO, socket, device or directory: reading one
// could block a source or never end.
type notRegularError struct {
	path, kind string
}

func (e *notRegularError) Error() string {
	return fmt.Sprintf("%q is a %s, not a regular file; only regular files are read", e.path, e.kind)
}

// dirEnt is one name in a directory with its inode number, as the
// directory itself lists it (see listDir).
type dirEnt struct {
	name string
	ino  uint64
	typ  uint8 // DT_* (DT_UNKNOWN when the file system does not say)
}
