package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/httpapi"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

// TestSearchesCmd runs `logbox searches` in-process against the real API
// over a real embedded etcd.
func TestSearchesCmd(t *testing.T) {
	etcd, cli := cmdServer(t, "searches", func(cli *clientv3.Client) httpapi.Deps {
		return httpapi.Deps{Searches: settings.NewSearchStore(cli)}
	})

	cli(0, "save", "errs", "level:error", "--from", "now-1h", "--to", "now", "--column", "host", "--column", "status", "--description", "all errors")
	// Flags first, then the arguments; a query starting with - after --.
	cli(0, "save", "--view", "visualize", "--chart", "bar", "by-status", "* | stats count() by (status)")
	cli(0, "save", "quiet", "--", "-level:debug")
	if _, stderr := cli(1, "save", "bad", "q", "--view", "dashboard"); !strings.Contains(stderr, "view:") {
		t.Fatalf("bad view: %s", stderr)
	}

	out, _ := cli(0, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "by-status ") ||
		!strings.Contains(lines[1], "visualize") || !strings.HasPrefix(lines[2], "errs ") || !strings.Contains(lines[2], "now-1h") || !strings.HasPrefix(lines[3], "quiet ") || !strings.Contains(lines[3], "-level:debug") {
		t.Fatalf("list:\n%s", out)
	}
	out, _ = cli(0, "list", "--json")
	var list pipeline.SavedSearchList
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Searches) != 3 || list.Searches[0].Chart != "bar" {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	out, _ = cli(0, "get", "errs")
	var ss pipeline.SavedSearch
	if err := json.Unmarshal([]byte(out), &ss); err != nil || ss.Query != "level:error" || strings.Join(ss.Columns, ",") != "host,status" || ss.Description != "all errors" || ss.Created.IsZero() {
		t.Fatalf("get: %v\n%s", err, out)
	}

	// save replaces.
	cli(0, "save", "errs", "level:error OR level:fatal")
	if out, _ = cli(0, "get", "errs"); !strings.Contains(out, "level:fatal") || strings.Contains(out, "now-1h") {
		t.Fatalf("after save again: %s", out)
	}

	cli(0, "rename", "errs", "errors")
	if _, stderr := cli(1, "rename", "errors", "by-status"); !strings.Contains(stderr, "already exists") {
		t.Fatalf("rename onto a taken name: %s", stderr)
	}
	if _, stderr := cli(1, "get", "errs"); !strings.Contains(stderr, "not found") {
		t.Fatalf("get after rename: %s", stderr)
	}
	cli(0, "rm", "errors")
	if _, stderr := cli(1, "rm", "errors"); !strings.Contains(stderr, "not found") {
		t.Fatalf("rm twice: %s", stderr)
	}

	// An invalid entry written to etcd is named on stderr, not listed.
	if _, err := etcd.Put(context.Background(), settings.SearchesPrefix+"broken", `{"name":"broken"}`); err != nil {
		t.Fatal(err)
	}
	out, stderr := cli(0, "list")
	if strings.Contains(out, "broken") || !strings.Contains(stderr, `invalid entry "broken"`) || !strings.Contains(stderr, "query:") {
		t.Fatalf("list with an invalid entry:\nstdout: %s\nstderr: %s", out, stderr)
	}

	// Usage errors exit 2.
	cli(2)
	cli(2, "get")
	cli(2, "frobnicate", "x")
	cli(2, "rename", "only-one")
}

// cmdServer serves the API, with the Deps deps makes over a client of a
// real embedded etcd, without credentials in the environment. It returns
// that client, and cli, which runs `logbox cmd SUB ARGS…` in-process
// against the server (--server goes after SUB), fails the test unless it
// exits wantCode, and returns its stdout and stderr.
func cmdServer(t *testing.T, cmd string, deps func(cli *clientv3.Client) httpapi.Deps) (*clientv3.Client, func(wantCode int, args ...string) (string, string)) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := settings.StartEmbedded(filepath.Join(t.TempDir(), "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	srv := httptest.NewServer(httpapi.New(deps(e.Client()), quiet))
	t.Cleanup(srv.Close)
	t.Setenv("LOGBOX_TOKEN", "")
	t.Setenv("LOGBOX_USER", "")
	cli := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if len(args) > 0 {
			args = append([]string{args[0], "--server", srv.URL}, args[1:]...)
		}
		args = append([]string{cmd}, args...)
		if code := run(args, &out, &errb); code != wantCode {
			t.Fatalf("logbox %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	return e.Client(), cli
}
