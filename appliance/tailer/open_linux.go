package tailer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// openFile opens path for reading without ever blocking and without
// trusting the path: it takes a handle on whatever path names now
// (O_PATH: no open side effects, a FIFO does not block), checks that the
// handle is a regular file, resolves where that file really is from the
// handle (/proc/self/fd), asks allowed about that real path, and only then
// opens the same file for reading through the handle. A symlink swapped
// between a check and the open can therefore not redirect the read: what
// is checked is what is read. It returns the file and its real path.
func openFile(path string, allowed func(real string) error) (*os.File, string, error) {
	h, err := syscall.Open(path, unix.O_PATH|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(h)
	var st syscall.Stat_t
	if err := syscall.Fstat(h, &st); err != nil {
		return nil, "", &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, "", &notRegularError{path: path, kind: fileKind(st.Mode)}
	}
	handle := "/proc/self/fd/" + strconv.Itoa(h)
	real, err := os.Readlink(handle)
	if err != nil {
		return nil, "", fmt.Errorf("resolve %q through its descriptor (is /proc mounted?): %w", path, err)
	}
	if allowed != nil {
		if err := allowed(real); err != nil {
			return nil, "", err
		}
	}
	// Reopening the handle opens the very file checked above (with the
	// permission checks of a normal open).
	fd, err := syscall.Open(handle, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st2 syscall.Stat_t
	if err := syscall.Fstat(fd, &st2); err != nil || st2.Dev != st.Dev || st2.Ino != st.Ino {
		syscall.Close(fd)
		return nil, "", fmt.Errorf("reopen %q: not the file checked", path)
	}
	// A regular file: reads never block, so the descriptor can be a
	// plain blocking one for the os package.
	_ = syscall.SetNonblock(fd, false)
	return os.NewFile(uintptr(fd), path), real, nil
}

func fileKind(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return "FIFO"
	case syscall.S_IFSOCK:
		return "socket"
	case syscall.S_IFCHR:
		return "character device"
	case syscall.S_IFBLK:
		return "block device"
	case syscall.S_IFDIR:
		return "directory"
	case syscall.S_IFLNK:
		return "symlink"
	}
	return "special file"
}

// fdPath is where the open file f is now (its name may have changed since
// it was opened); it ends in " (deleted)" for a file without a name.
func fdPath(f *os.File) (string, error) {
	return os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
}

// listDir lists dir with inode numbers in one pass of getdents64 calls,
// so that finding a file by inode in a directory of 10 000 files costs no
// stat per file.
func listDir(dir string) ([]dirEnt, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	var out []dirEnt
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err != nil {
			return out, &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return out, nil
		}
		for off := 0; off+19 <= n; {
			ino := binary.NativeEndian.Uint64(buf[off:])
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen == 0 || off+reclen > n {
				break
			}
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if s := string(name); s != "." && s != ".." {
				out = append(out, dirEnt{name: s, ino: ino, typ: buf[off+18]})
			}
			off += reclen
		}
	}
}

func (e dirEnt) maybeRegular() bool { return e.typ == syscall.DT_REG || e.typ == syscall.DT_UNKNOWN }
