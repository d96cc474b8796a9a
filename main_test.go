package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "logbox.yaml")
	yaml := "data: /from/file\ntopic: filetopic\nkafka-acks: \"1\"\ncollect:\n  - /var/log/a/*.log\n  - /var/log/b/*.log\nhost: filehost\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOGBOX_TOPIC", "envtopic")
	t.Setenv("LOGBOX_HOST", "envhost")
	rc, err := loadRunConfig([]string{"--config", file, "--host", "flaghost"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := rc.Config
	checks := []struct{ name, got, want string }{
		{"flag beats env and file", c.Host, "flaghost"},
		{"env beats file", c.Topic, "envtopic"},
		{"file beats default", c.DataDir, "/from/file"},
		{"file value", c.KafkaAcks, "1"},
		{"default", c.HTTPAddr, "127.0.0.1:7070"},
		{"list from file", strings.Join(c.Collect, " "), "/var/log/a/*.log /var/log/b/*.log"},
		{"default allow paths", strings.Join(c.AllowPaths, " "), "/var/log"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}

	if err := os.WriteFile(file, []byte("tpoic: typo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRunConfig([]string{"--config", file}, io.Discard); err == nil || !strings.Contains(err.Error(), "tpoic") {
		t.Errorf("unknown key in config file: %v", err)
	}
	if _, err := loadRunConfig([]string{"--allow-paths", "/a,/b"}, io.Discard); err != nil {
		t.Error(err)
	}
}

// buildBinary builds logbox once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "logbox")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

type proc struct {
	cmd     *exec.Cmd
	url     string
	done    chan error
	running chan string

	logMu sync.Mutex
	log   []string // the last maxProcLog lines of stderr
}

// maxProcLog bounds the stderr lines a proc keeps for a failure report.
const maxProcLog = 20000

// dumpLog writes what the process printed to a file (under
// LOGBOX_ARTIFACTS when set) and logs its path and last lines: a binary
// that hangs or fails is explained by its own log, Debug lines included.
func (p *proc) dumpLog(t *testing.T, why string) {
	t.Helper()
	p.logMu.Lock()
	lines := append([]string(nil), p.log...)
	p.logMu.Unlock()
	dir := os.Getenv("LOGBOX_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	name := filepath.Join(dir, fmt.Sprintf("%s-%d.log", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), p.cmd.Process.Pid))
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Logf("write %s: %v", name, err)
	}
	t.Logf("%s: its stderr is in %s; the last lines:", why, name)
	for _, l := range lines[max(0, len(lines)-40):] {
		t.Log("  " + l)
	}
}

var runningRE = regexp.MustCompile(`msg="logbox running".* http=(http://[0-9.:]+)`)

// startBinary runs the real binary and waits for its "running" log line.
func startBinary(t *testing.T, bin, workdir string, args ...string) *proc {
	t.Helper()
	p := launchBinary(t, bin, workdir, args...)
	waitRunning(t, p)
	return p
}

// waitRunning waits for the "running" log line of a launched binary and
// sets p.url.
func waitRunning(t *testing.T, p *proc) {
	t.Helper()
	select {
	case p.url = <-p.running:
	case err := <-p.done:
		t.Fatalf("logbox exited before running: %v", err)
	case <-time.After(90 * time.Second):
		// A goroutine dump shows where start-up waits.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		p.dumpLog(t, "not running after 90s")
		t.Fatal("logbox not running after 90s")
	}
}

// launchBinary starts the real binary without waiting for it.
func launchBinary(t *testing.T, bin, workdir string, args ...string) *proc {
	t.Helper()
	return launchWith(t, bin, workdir, nil, args...)
}

// launchWith starts a command without waiting for it, after prep (when not
// nil) adjusted it (credentials, limits). The process dies with the test
// binary (Pdeathsig) and is killed at the test's end; its WARN, ERROR,
// FATAL and panic lines go to the test log, and its last lines are kept
// for dumpLog.
func launchWith(t *testing.T, bin, workdir string, prep func(*exec.Cmd), args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = workdir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if prep != nil {
		prep(cmd)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), running: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logMu.Lock()
			if len(p.log) == maxProcLog {
				p.log = p.log[1:]
			}
			p.log = append(p.log, line)
			p.logMu.Unlock()
			if m := runningRE.FindStringSubmatch(line); m != nil {
				p.running <- m[1]
			}
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "FATAL") || strings.HasPrefix(line, "panic") {
				t.Log(line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // a line too long for the scanner
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return p
}

func (p *proc) total(t *testing.T, q string) int {
	t.Helper()
	resp, err := http.Get(p.url + "/api/search?limit=10000&track_total=true&q=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Total int `json:"total"`
		Hits  []struct {
			Line string `json:"line"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, h := range res.Hits {
		if seen[h.Line] {
			t.Fatalf("line %q found twice", h.Line)
		}
		seen[h.Line] = true
	}
	return res.Total
}

func (p *proc) waitTotal(t *testing.T, q string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		if got = p.total(t, q); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%q: %d hits, want %d", q, got, want)
}

func writeLines(t *testing.T, path string, from, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < from+n; i++ {
		fmt.Fprintf(f, "binline tok%06d INFO something happened\n", i)
	}
}

// TestBinary runs the real binary the way the README does (defaults plus
// --collect with a relative glob, free ports), checks lines written before
// and after start are searchable within 2 s, the CLI commands against it,
// and that SIGTERM exits promptly and a restart neither loses nor doubles.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(work, "logs", "app.log")
	writeLines(t, log, 0, 100)
	args := []string{"--collect", "logs/*.log", "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--host", "bintest"}
	p := startBinary(t, bin, work, args...)
	p.waitTotal(t, "binline", 100)

	start := time.Now()
	writeLines(t, log, 100, 1)
	p.waitTotal(t, "binline", 101)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("appended line searchable after %v, want within 2s", d)
	}

	// The client commands talk to it over the API.
	out, err := exec.Command(bin, "sources", "list", "--server", p.url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), filepath.Join(work, "logs", "*.log")) {
		t.Fatalf("sources list: %v\n%s", err, out)
	}
	extra := filepath.Join(work, "logs", "extra")
	if err := os.MkdirAll(extra, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "sources", "add", "extra", "--path", extra+"/*.txt", "--field", "team=core", "--server", p.url).CombinedOutput()
	if err != nil {
		t.Fatalf("sources add: %v\n%s", err, out)
	}
	writeLines(t, filepath.Join(extra, "x.txt"), 1000, 5)
	p.waitTotal(t, "fields.team:core", 5)
	out, err = exec.Command(bin, "sources", "get", "extra", "--server", p.url).CombinedOutput()
	if err != nil || strings.Contains(string(out), `"parser"`) {
		t.Fatalf("sources get (default parser omitted): %v\n%s", err, out)
	}
	// A parser and a zone from the command line; a bad regex is refused
	// naming the field.
	out, err = exec.Command(bin, "sources", "add", "zoned", "--path", extra+"/*.log", "--parser", "nginx", "--timezone", "Asia/Shanghai", "--server", p.url).CombinedOutput()
	if err != nil {
		t.Fatalf("sources add --parser --timezone: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "sources", "get", "zoned", "--server", p.url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"parser": "nginx"`) || !strings.Contains(string(out), `"timezone": "Asia/Shanghai"`) {
		t.Fatalf("sources get zoned: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "sources", "add", "badre", "--path", extra+"/*.re", "--parser-regex", "(?P<x>[", "--server", p.url).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "parser.regex") {
		t.Fatalf("sources add with a bad regex: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "sources", "rm", "zoned", "--server", p.url).CombinedOutput(); err != nil {
		t.Fatalf("sources rm zoned: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "sources", "add", "bad", "--path", "/etc/*", "--server", p.url).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "paths[0]") {
		t.Fatalf("sources add outside roots: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "search", "tok000100", "--server", p.url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "binline tok000100") {
		t.Fatalf("search: %v\n%s", err, out)
	}
	// A stats pipe prints a table, or the answer as JSON.
	out, err = exec.Command(bin, "search", "fields.team:core | stats count() as n, count_distinct(host), max(nothere) by (team)", "--server", p.url).Output()
	if err != nil || !regexp.MustCompile(`(?m)^team\s+n\s+count_distinct\(host\)\s+max\(nothere\)\n+core\s+5\s+1\s+-$`).Match(out) {
		t.Fatalf("search with stats: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "search", "fields.team:core | stats count() by (team)", "--json", "--server", p.url).Output()
	if err != nil || !strings.Contains(string(out), `"columns": [`) || !strings.Contains(string(out), `"core",`) {
		t.Fatalf("search with stats --json: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "sources", "rm", "extra", "--server", p.url).CombinedOutput()
	if err != nil {
		t.Fatalf("sources rm: %v\n%s", err, out)
	}

	// SIGTERM: drain and exit promptly, with status 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}

	writeLines(t, log, 101, 50)
	p = startBinary(t, bin, work, args...)
	writeLines(t, log, 151, 50)
	p.waitTotal(t, "binline", 206)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done

	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "logbox ") {
		t.Fatalf("version: %v %s", err, out)
	}
}

// TestBinaryAuth: with a token file every request needs the token (the CLI
// reads it from LOGBOX_TOKEN), SIGHUP re-reads the file, and a non-loopback
// --http without auth refuses to start.
func TestBinaryAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	work := t.TempDir()
	tokFile := filepath.Join(work, "tokens")
	tok1, tok2 := strings.Repeat("a1", 16), strings.Repeat("b2", 16)
	if err := os.WriteFile(tokFile, []byte(tok1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, bin, work, "--http", "127.0.0.1:0", "--etcd-listen", "127.0.0.1:0", "--auth-token-file", tokFile)
	get := func(tok string) int {
		req, _ := http.NewRequest("GET", p.url+"/api/sources", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(""); c != 401 {
		t.Fatalf("no token: %d", c)
	}
	if c := get(tok1); c != 200 {
		t.Fatalf("token: %d", c)
	}
	cli := exec.Command(bin, "sources", "list", "--server", p.url)
	cli.Env = append(os.Environ(), "LOGBOX_TOKEN="+tok1)
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("CLI with token: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "sources", "list", "--server", p.url).CombinedOutput(); err == nil || !strings.Contains(string(out), "authentication required") {
		t.Fatalf("CLI without token: %v\n%s", err, out)
	}

	// Rotate the token and send SIGHUP.
	if err := os.WriteFile(tokFile, []byte(tok2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for get(tok2) != 200 || get(tok1) != 401 {
		if time.Now().After(deadline) {
			t.Fatal("token not rotated by SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done

	// Not on a public address without auth.
	cmd := exec.Command(bin, "--http", "0.0.0.0:0", "--etcd-listen", "127.0.0.1:0", "--data", filepath.Join(work, "d2"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to serve without authentication") {
		t.Fatalf("public bind without auth: %v\n%s", err, out)
	}
}

func TestDayDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour, "-1d": -24 * time.Hour, "90m": 90 * time.Minute,
	} {
		var d time.Duration
		if err := (dayDuration{&d}).Set(in); err != nil || d != want {
			t.Errorf("%q → %v, %v; want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"x", "7x", "d", "1.5d"} {
		var d time.Duration
		if err := (dayDuration{&d}).Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestMemoryLimitByRole: the soft memory limit the README promises per
// role (GOMEMLIMIT, when set, is left to the runtime).
func TestMemoryLimitByRole(t *testing.T) {
	for role, want := range map[string]int64{appliance.RoleAgent: 64 << 20, appliance.RoleAll: 256 << 20, appliance.RoleIndexer: 256 << 20, "": 0} {
		if got := memoryLimit(role); got != want {
			t.Errorf("role %q: limit %d, want %d", role, got, want)
		}
	}
}
