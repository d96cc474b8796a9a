package tailer

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// fingerprintMax bounds the head of a file that its fingerprint covers.
const fingerprintMax = 1024

// devIno is where a file lives, regardless of its name.
type devIno struct{ dev, ino uint64 }

func devInoOf(fi os.FileInfo) (devIno, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return devIno{}, false
	}
	return devIno{uint64(st.Dev), st.Ino}, true
}

// identity is a file's identity: device, inode and a fingerprint of its
// first line. The inode tells two files apart; the fingerprint tells a
// reused inode, or a file truncated and rewritten in place, from the file
// that was there before. The first line is used because it does not
// change while a file grows (a fixed-size head would).
type identity struct {
	devIno
	fp uint64
}

func (id identity) String() string {
	return fmt.Sprintf("%x-%x-%016x", id.dev, id.ino, id.fp)
}

// errNotReady means the file has no complete first line yet (and is
// shorter than fingerprintMax): it is identified, and read, once it has.
var errNotReady = errors.New("no complete first line yet")

// identify reads the identity of the open file f.
func identify(f *os.File) (identity, error) {
	fi, err := f.Stat()
	if err != nil {
		return identity{}, fmt.Errorf("stat: %w", err)
	}
	di, ok := devInoOf(fi)
	if !ok {
		return identity{}, errors.New("no device and inode on this platform")
	}
	head := make([]byte, fingerprintMax)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return identity{}, fmt.Errorf("read head: %w", err)
	}
	head = head[:n]
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i+1]
	} else if n < fingerprintMax {
		return identity{}, errNotReady
	}
	h := fnv.New64a()
	h.Write(head)
	return identity{devIno: di, fp: h.Sum64()}, nil
}

// parseFileID reads back what identity.String wrote.
func parseFileID(s string) (identity, bool) {
	var id identity
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return id, false
	}
	var err error
	if id.dev, err = strconv.ParseUint(parts[0], 16, 64); err != nil {
		return id, false
	}
	if id.ino, err = strconv.ParseUint(parts[1], 16, 64); err != nil {
		return id, false
	}
	if id.fp, err = strconv.ParseUint(parts[2], 16, 64); err != nil {
		return id, false
	}
	return id, true
}

// FileID is the identity string of the file at path, as records and
// checkpoints carry it.
func FileID(path string) (string, error) {
	f, _, err := openFile(path, nil)
	if err != nil {
		return "", err
	}
	defer f.Close()
	id, err := identify(f)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// tailBytes is how much of a file before an offset its tail hash covers.
const tailBytes = 64

// tailHash hashes the (up to) tailBytes bytes of f before end; a copy of
// the file has the same bytes there. It is 0 when they cannot be read.
func tailHash(f *os.File, end int64) uint64 {
	n := min(end, tailBytes)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, end-n); err != nil {
		return 0
	}
	h := fnv.New64a()
	h.Write(buf)
	return h.Sum64()
}
