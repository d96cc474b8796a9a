package tailer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// MaxGlobDepth is how many directory levels one `**` spans at most (as
// Filebeat's recursive glob). Deeper files are not matched.
const MaxGlobDepth = 8

// globResult is one expansion of a source's path glob.
type globResult struct {
	matches []string // files and other non-directories, sorted
	// dirs are the directories read or looked into on the way: a change
	// in any of them (a file created, renamed or removed) can change the
	// matches.
	dirs []string
	// complete is false when a directory on the way is missing or could
	// not be read: the result may change without an event in dirs.
	complete bool
	err      error // the first directory that could not be read, if any
}

// expandGlob expands an absolute glob. Path elements use filepath.Match
// syntax; an element that is exactly `**` matches zero or more directories
// (up to MaxGlobDepth), as in Filebeat and Promtail, so `/var/log/**/*.log`
// matches /var/log/y.log and /var/log/a/b/x.log. A trailing `**` matches
// every file below. Symlinked directories are followed, but a directory
// is entered once per expansion, so a symlink loop ends there. Hidden
// names are matched like any other (as filepath.Glob does).
func expandGlob(pattern string) globResult {
	g := &globber{res: globResult{complete: true}, seen: map[string]bool{}, entered: map[devIno]bool{}, listed: map[string][]fs.DirEntry{}}
	pattern = filepath.Clean(pattern)
	if !filepath.IsAbs(pattern) {
		g.res.err = errors.New("not an absolute path")
		g.res.complete = false
		return g.res
	}
	elems := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	if elems[len(elems)-1] == "**" {
		elems = append(elems, "*")
	}
	g.walk("/", elems, 0)
	sort.Strings(g.res.matches)
	sort.Strings(g.res.dirs)
	return g.res
}

type globber struct {
	res     globResult
	seen    map[string]bool // matches and dirs already listed
	entered map[devIno]bool // directories entered by ** (loops)
	listed  map[string][]fs.DirEntry
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func (g *globber) fail(dir string, err error) {
	g.res.complete = false
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return
	}
	if g.res.err == nil {
		g.res.err = err
	}
}

func (g *globber) addDir(dir string) {
	if k := "d" + dir; !g.seen[k] {
		g.seen[k] = true
		g.res.dirs = append(g.res.dirs, dir)
	}
}

func (g *globber) match(path string) {
	if k := "f" + path; !g.seen[k] {
		g.seen[k] = true
		g.res.matches = append(g.res.matches, path)
	}
}

// walk matches elems below dir; depth counts the levels ** has spanned.
func (g *globber) walk(dir string, elems []string, depth int) {
	el, rest := elems[0], elems[1:]
	switch {
	case el == "**":
		if !g.enter(dir) {
			return // entered before: a symlink loop, or a second way there
		}
		// Zero directories, then one more level, and so on.
		g.walk(dir, rest, depth)
		if depth >= MaxGlobDepth {
			return
		}
		for _, sub := range g.subdirs(dir) {
			g.walk(sub, elems, depth+1)
		}
	case !hasMeta(el):
		next := filepath.Join(dir, el)
		if len(rest) == 0 {
			_, err := os.Lstat(next)
			switch {
			case err == nil:
				g.addDir(dir)
				g.match(next)
			case errors.Is(err, fs.ErrNotExist):
				// Not there yet: its creation is an event in dir, if dir
				// is there.
				if _, derr := os.Stat(dir); derr == nil {
					g.addDir(dir)
				} else {
					g.fail(dir, derr)
				}
			default:
				g.fail(next, err)
			}
			return
		}
		g.walk(next, rest, depth)
	default:
		ents, err := g.readDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if ok, _ := filepath.Match(el, e.Name()); !ok {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if len(rest) == 0 {
				if !isDir(p, e) {
					g.match(p)
				}
				continue
			}
			if isDir(p, e) {
				g.walk(p, rest, depth)
			}
		}
	}
}

// isDir reports whether e (named p) is a directory or a symlink to one;
// only symlinks cost a stat.
func isDir(p string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.IsDir()
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// readDir lists dir once per expansion, sorted by name.
func (g *globber) readDir(dir string) ([]fs.DirEntry, error) {
	if ents, ok := g.listed[dir]; ok {
		return ents, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		g.fail(dir, err)
		return nil, err
	}
	g.addDir(dir)
	g.listed[dir] = ents
	return ents, nil
}

// enter marks dir as expanded by **; false if it was before.
func (g *globber) enter(dir string) bool {
	fi, err := os.Stat(dir)
	if err != nil {
		g.fail(dir, err)
		return false
	}
	di, ok := devInoOf(fi)
	if !ok {
		return true
	}
	if g.entered[di] {
		return false
	}
	g.entered[di] = true
	return true
}

// subdirs lists the directories in dir, symlinks to directories included.
func (g *globber) subdirs(dir string) []string {
	ents, err := g.readDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if isDir(p, e) {
			out = append(out, p)
		}
	}
	return out
}
