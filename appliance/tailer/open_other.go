//go:build !linux

package tailer

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// openFile opens path for reading without blocking (O_NONBLOCK: a FIFO
// does not hang the open), refuses anything but a regular file, and asks
// allowed about the path with symlinks resolved. Without /proc the real
// path is resolved by name after the open, which a symlink swap can race;
// logbox is built for Linux, where openFile checks the descriptor itself.
func openFile(path string, allowed func(real string) error) (*os.File, string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, "", err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, "", &notRegularError{path: path, kind: fi.Mode().Type().String()}
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("resolve %q: %w", path, err)
	}
	if allowed != nil {
		if err := allowed(real); err != nil {
			f.Close()
			return nil, "", err
		}
	}
	return f, real, nil
}

func fdPath(f *os.File) (string, error) { return f.Name(), nil }

// listDir lists dir with inode numbers (a stat per file here).
func listDir(dir string) ([]dirEnt, error) {
	ents, err := os.ReadDir(dir)
	var out []dirEnt
	for _, e := range ents {
		fi, ierr := e.Info()
		if ierr != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			typ := uint8(0)
			if fi.Mode().IsRegular() {
				typ = 8
			}
			out = append(out, dirEnt{name: e.Name(), ino: uint64(st.Ino), typ: typ})
		}
	}
	return out, err
}

func (e dirEnt) maybeRegular() bool { return e.typ == 8 || e.typ == 0 }
