package tailer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/logbox/logbox/appliance/pipeline"
)

func mkfile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExpandGlobDoubleStar(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"y.log", "a/x.log", "a/b/x.log", "a/b/c/d/e/f/g/h/deep8.log", "a/b/c/d/e/f/g/h/i/deep9.log", "a/b/skip.txt", "c/x.log"} {
		mkfile(t, filepath.Join(root, p), "x\n")
	}
	// A loop (a/b/up → a) and a second way to c (a/toc → c).
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "a/b/up")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "c"), filepath.Join(root, "a/toc")); err != nil {
		t.Fatal(err)
	}
	rel := func(ms []string) []string {
		var out []string
		for _, m := range ms {
			out = append(out, strings.TrimPrefix(m, root+"/"))
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		glob string
		want []string
	}{
		{"**/*.log", []string{"a/b/c/d/e/f/g/h/deep8.log", "a/b/x.log", "a/toc/x.log", "a/x.log", "y.log"}},
		{"a/**/x.log", []string{"a/b/x.log", "a/toc/x.log", "a/x.log"}},
		{"**/b/*.log", []string{"a/b/x.log"}},
		{"a/**", []string{"a/b/c/d/e/f/g/h/deep8.log", "a/b/c/d/e/f/g/h/i/deep9.log", "a/b/skip.txt", "a/b/x.log", "a/toc/x.log", "a/x.log"}},
		{"*.log", []string{"y.log"}},
		{"a/*/x.log", []string{"a/b/x.log", "a/toc/x.log"}},
		{"nope/**/*.log", nil},
	} {
		res := expandGlob(filepath.Join(root, tc.glob))
		got := rel(res.matches)
		if tc.glob == "**/*.log" {
			// c/x.log is reached once, by whichever way comes first.
			got = slices.DeleteFunc(got, func(s string) bool { return s == "c/x.log" })
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.glob, got, tc.want)
		}
	}
	// Every directory looked into is reported, for the watcher.
	res := expandGlob(filepath.Join(root, "a/**/x.log"))
	if !slices.Contains(res.dirs, filepath.Join(root, "a/b")) || !res.complete {
		t.Errorf("dirs %q complete %v", res.dirs, res.complete)
	}
	if res := expandGlob(filepath.Join(root, "nope/*.log")); res.complete {
		t.Error("a glob below a missing directory reported complete")
	}
}

// TestDoubleStarSourceFollowsEveryDepth: a source with /dir/**/*.log reads
// files beside the ** and at any depth below, and a file created deeper
// later. (Before, ** was a plain * and matched one level only.)
func TestDoubleStarSourceFollowsEveryDepth(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "y.log"), "top\n")
	mkfile(t, filepath.Join(root, "a/x.log"), "one\n")
	mkfile(t, filepath.Join(root, "a/b/x.log"), "two\n")
	sink, cp := &memSink{}, newCP()
	m, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{filepath.Join(root, "**/*.log")}})
	defer stop()
	waitFor(t, "three files", func() bool { return len(sink.lines()) == 3 })
	mkfile(t, filepath.Join(root, "a/b/c/new.log"), "three\n")
	waitFor(t, "a file created three levels down", func() bool { return len(sink.lines()) == 4 })
	exactlyOnce(t, sink, []string{"top", "one", "two", "three"})
	if st := m.Sources(); len(st) != 1 || st[0].NoMatch || st[0].Paths[0].Matches != 4 {
		t.Fatalf("source status %+v", st)
	}
}

// TestNoMatchIsReported: a source whose globs match no file says so in
// its status, and stops saying so once a file appears.
func TestNoMatchIsReported(t *testing.T) {
	root := t.TempDir()
	sink, cp := &memSink{}, newCP()
	m, stop := startManager(t, sink, cp,
		pipeline.Source{Name: "empty", Paths: []string{filepath.Join(root, "nothing/*.log"), filepath.Join(root, "none-*.log")}},
		pipeline.Source{Name: "full", Paths: []string{filepath.Join(root, "app.log")}})
	defer stop()
	mkfile(t, filepath.Join(root, "app.log"), "x\n")
	waitFor(t, "status of both sources", func() bool {
		st := m.Sources()
		return len(st) == 2 && st[0].Name == "empty" && st[0].NoMatch && st[0].Warning != "" && !st[1].NoMatch && st[1].Files == 1
	})
	mkfile(t, filepath.Join(root, "nothing/late.log"), "y\n")
	waitFor(t, "a match appears", func() bool {
		st := m.Sources()
		return len(st) == 2 && !st[0].NoMatch && st[0].Paths[0].Matches == 1
	})
}
