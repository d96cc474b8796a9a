package pathpolicy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPolicy(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.log"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.log"), filepath.Join(root, "link.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ok.log"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	globs := []struct {
		glob string
		ok   bool
	}{
		{root + "/*.log", true},
		{root + "/sub/**/x.log", true},
		{root + "/**/*.log", true},
		{root + "/**", true},
		{root + "/a**/x.log", false},
		{root + "/**/../x.log", false},
		{root + "/escape/**/*.log", false},
		{root + "/ok.log", true},
		{root + "/../x.log", false},
		{root + "/a/../../x.log", false},
		{root + "%2f..%2fx.log", false},
		{"/etc/*.conf", false},
		{root + "x/*.log", false}, // a sibling whose name starts like the root
		{"relative/*.log", false},
		{root + "/escape/*.log", false},
	}
	for _, g := range globs {
		if err := p.CheckGlob(g.glob); (err == nil) != g.ok {
			t.Errorf("CheckGlob(%q) = %v, want ok=%v", g.glob, err, g.ok)
		}
	}
	if err := p.CheckFile(filepath.Join(root, "ok.log")); err != nil {
		t.Error(err)
	}
	if err := p.CheckFile(filepath.Join(root, "link.log")); err == nil {
		t.Error("symlink to a file outside the roots was allowed")
	}
	if _, err := New([]string{"var/log"}); err == nil {
		t.Error("relative root accepted")
	}
	// CheckReal judges the path as given (what a descriptor resolved to).
	for path, ok := range map[string]bool{
		root + "/ok.log":                 true,
		root + "/a/b/x.log (deleted)":    true,
		filepath.Join(outside, "secret"): false,
		root + "x/y.log":                 false,
		"relative.log":                   false,
	} {
		if err := p.CheckReal(path); (err == nil) != ok {
			t.Errorf("CheckReal(%q) = %v, want ok=%v", path, err, ok)
		}
	}
}

func TestStaticDir(t *testing.T) {
	for glob, want := range map[string]string{
		"/var/log/*.log":        "/var/log",
		"/var/log/nginx/a.log":  "/var/log/nginx",
		"/var/log/app*/x/*.log": "/var/log",
		"/var/log/[ab].log":     "/var/log",
		"/var/log/**/*.log":     "/var/log",
		"/var/log/a/**":         "/var/log/a",
	} {
		if got := StaticDir(glob); got != want {
			t.Errorf("StaticDir(%q) = %q, want %q", glob, got, want)
		}
	}
}
