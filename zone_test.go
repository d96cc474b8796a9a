package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLocalZoneName: the box's zone name from $TZ, else from where
// /etc/localtime links; "" when neither names a zone.
func TestLocalZoneName(t *testing.T) {
	dir := t.TempDir()
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sh := link("sh", "/usr/share/zoneinfo/Asia/Shanghai")
	posix := link("posix", "../usr/share/zoneinfo/posix/Europe/Berlin")
	odd := link("odd", "/opt/zones/Nowhere")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("TZif"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		tz        string
		hasTZ     bool
		localtime string
		want      string
	}{
		{"", false, sh, "Asia/Shanghai"},
		{"", false, posix, "Europe/Berlin"},
		{"", false, odd, ""},
		{"", false, plain, ""},
		{"", false, filepath.Join(dir, "missing"), ""},
		{"America/New_York", true, sh, "America/New_York"},
		{":Europe/Paris", true, sh, "Europe/Paris"},
		{"", true, sh, "UTC"},
		{"Not/AZone", true, sh, ""},
		{"/usr/share/zoneinfo/Asia/Tokyo", true, sh, ""},
	}
	for _, c := range cases {
		if got := localZoneName(c.tz, c.hasTZ, c.localtime); got != c.want {
			t.Errorf("TZ=%q (set %v), /etc/localtime %s: %q, want %q", c.tz, c.hasTZ, c.localtime, got, c.want)
		}
	}
}
