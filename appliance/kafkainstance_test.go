package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKafkaInstanceID: the indexer's static group membership id is the
// same for every start with the same --host and data directory, however
// the directory is named (relative, absolute, through a symlink), differs
// for another directory or host, and --kafka-instance-id replaces it; a
// bad one is refused naming the flag.
func TestKafkaInstanceID(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	id := func(host, dir, override string) string {
		c := DefaultConfig()
		c.Host, c.DataDir, c.KafkaInstanceID = host, dir, override
		return c.kafkaInstanceID()
	}
	base := id("web1", data, "")
	if !strings.HasPrefix(base, "logbox-web1-") {
		t.Errorf("derived id %q", base)
	}
	for _, dir := range []string{"data", "./data/", link} {
		if got := id("web1", dir, ""); got != base {
			t.Errorf("data dir %q: id %q, want %q as for %q", dir, got, base, data)
		}
	}
	if id("web1", filepath.Join(root, "other"), "") == base || id("web2", data, "") == base {
		t.Error("the same id for another data dir or host")
	}
	if got := id("web1", data, "idx-a"); got != "idx-a" {
		t.Errorf("override: %q", got)
	}

	c := DefaultConfig()
	c.Kafka, c.KafkaInstanceID = []string{"127.0.0.1:9092"}, "no spaces allowed"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--kafka-instance-id") {
		t.Errorf("bad --kafka-instance-id: %v", err)
	}
}
