package journald_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/ingest/ingesttest"
	"github.com/logbox/logbox/appliance/inputs/journald"
	"github.com/logbox/logbox/appliance/pipeline"
)

// A journal followed while it grows (a file appended to, a second file
// in its directory), the reader stopped, more written meanwhile, and a
// new reader on the same state: every entry is searchable exactly once
// with its fields, and the new reader reads only what the first had not
// acked (the checkpoint).
func TestFollowAndRestartExactlyOnce(t *testing.T) {
	tl := needTools(t)
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			dir := filepath.Join(t.TempDir(), "journal")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			fa, fb := filepath.Join(dir, "a.journal"), filepath.Join(dir, "b.journal")
			var all [][]field
			add := func(path string, es [][]field) {
				tl.write(t, path, es)
				all = append(all, es...)
			}
			add(fa, entries("alpha", 0, 150))
			state := t.TempDir()
			cfg := journald.Config{Source: dir, StateDir: state, Host: "fallback-host", Sink: p.Sink,
				MaxBatch: 40, FlushInterval: 20 * time.Millisecond, RestartBackoff: 50 * time.Millisecond}
			r1 := start(t, cfg)
			waitFor(t, 30*time.Second, "150 entries acked", func() bool { return r1.r.Stats().EntriesAcked == 150 })
			pid := r1.r.Stats().PID
			if pid == 0 {
				t.Fatal("no journalctl PID while following")
			}

			// While following: appended to a file, and a new file.
			add(fa, entries("alpha", 150, 60))
			add(fb, entries("beta", 0, 40))
			exactlyOnce(t, p, "jentry", messages(all))
			waitFor(t, 10*time.Second, "250 entries acked", func() bool { return r1.r.Stats().EntriesAcked == 250 })

			r1.stop(t)
			st := r1.r.Stats()
			if st.Cursor == "" || readState(t, state) != st.Cursor {
				t.Fatalf("checkpoint %q, state file %q", st.Cursor, readState(t, state))
			}
			if st.EntriesRead != 250 || st.Restarts != 0 || st.InFlight != 0 || st.PID != 0 {
				t.Fatalf("stats after stop: %+v", st)
			}
			// journalctl was killed and reaped.
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("journalctl %d still exists after Run returned: %v", pid, err)
			}

			// Written while logbox is down; more than 10 entries after the
			// cursor (journalctl --follow alone would start 10 before the end).
			add(fa, entries("alpha", 210, 30))
			add(fb, entries("beta", 40, 30))
			r2 := start(t, cfg)
			hits := exactlyOnce(t, p, "jentry", messages(all))
			waitFor(t, 10*time.Second, "the new entries acked", func() bool { return r2.r.Stats().EntriesAcked == 60 })
			if st := r2.r.Stats(); st.EntriesRead != 60 {
				t.Fatalf("after the restart %d entries were read, want the 60 new ones: %+v", st.EntriesRead, st)
			}

			// Each hit carries its entry's time, host, identity and fields.
			cursors := tl.cursors(t, dir)
			byMsg := map[string][]field{}
			for _, e := range all {
				byMsg[value(e, "MESSAGE")] = e
			}
			fileIDs := map[string]bool{}
			for _, h := range hits {
				e := byMsg[h.Line]
				us, _ := strconv.ParseInt(value(e, "__REALTIME_TIMESTAMP"), 10, 64)
				prio := value(e, "PRIORITY")
				want := map[string]string{"_SYSTEMD_UNIT": value(e, "_SYSTEMD_UNIT"), "SYSLOG_IDENTIFIER": value(e, "SYSLOG_IDENTIFIER"),
					"_PID": value(e, "_PID"), "_COMM": value(e, "_COMM"), "PRIORITY": prio, "_TRANSPORT": "journal",
					"_BOOT_ID": bootID, "_HOSTNAME": "jhost", "level": journald.Level(prio)}
				for k, v := range want {
					if h.Fields[k] != v {
						t.Errorf("%q: field %s = %q, want %q (fields %v)", h.Line, k, h.Fields[k], v, h.Fields)
					}
				}
				if !h.TS.Equal(time.UnixMicro(us)) || h.Host != "jhost" || h.Source != journald.Name || !strings.HasPrefix(h.FileID, "journal:") {
					t.Errorf("%q: ts %v host %q source %q file %q", h.Line, h.TS, h.Host, h.Source, h.FileID)
				}
				fileIDs[h.FileID] = true
			}
			// Two journal files made apart: two sequence-number ids; the
			// offsets are the entries' sequence numbers from their cursors.
			if len(fileIDs) != 2 {
				t.Errorf("file ids %v, want two", fileIDs)
			}
			offsets := map[string]bool{}
			for _, c := range cursors {
				id, off := journald.Identity(c, "", -1, "")
				offsets[id+"|"+strconv.FormatInt(off, 10)] = true
			}
			for _, h := range hits {
				if !offsets[h.FileID+"|"+strconv.FormatInt(h.Offset, 10)] {
					t.Errorf("%q: identity %s|%d is no cursor's", h.Line, h.FileID, h.Offset)
				}
			}
			// Journal fields and the level answer queries.
			// The index takes the level from PRIORITY (0-3 error, 4 warn,
			// 5-6 info, 7 debug); the field keeps syslog's name.
			errs, severe, warns := 0, 0, 0
			for _, e := range all {
				switch value(e, "PRIORITY") {
				case "3":
					errs++
					severe++
				case "0", "1", "2":
					severe++
				case "4":
					warns++
				}
			}
			for q, want := range map[string]int{
				`_SYSTEMD_UNIT:beta.service`: 70,
				`SYSLOG_IDENTIFIER:alpha`:    240,
				`fields.level:err`:           errs,
				`level:error`:                severe,
				`level:warn`:                 warns,
				`+_PID:4003 +_COMM:beta`:     10,
			} {
				if n := p.Count(q); n != want {
					t.Errorf("%s: %d lines, want %d", q, n, want)
				}
			}
			r2.stop(t)
			if c := readState(t, state); c != cursors[len(cursors)-1] {
				t.Errorf("state file %q, want the last entry's cursor %q", c, cursors[len(cursors)-1])
			}
		})
	}
}

func value(e []field, name string) string {
	for _, f := range e {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// A nacked batch leaves the checkpoint where it was, in memory and on
// disk; once the writer takes batches again the entries are read again
// and indexed once.
func TestNackKeepsCursor(t *testing.T) {
	tl := needTools(t)
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			file := filepath.Join(t.TempDir(), "n.journal")
			first := entries("nack", 0, 100)
			tl.write(t, file, first)
			g := &gateSink{next: p.Sink}
			g.set(true, false)
			state := t.TempDir()
			rr := start(t, journald.Config{Source: file, StateDir: state, Sink: g, MaxBatch: 30,
				FlushInterval: 20 * time.Millisecond, RestartBackoff: 50 * time.Millisecond})
			waitFor(t, 20*time.Second, "nacks", func() bool { return rr.r.Stats().EntriesNacked >= 60 })
			st := rr.r.Stats()
			if st.Cursor != "" || st.EntriesAcked != 0 || !strings.Contains(st.LastError, "given up") {
				t.Fatalf("after nacks: %+v", st)
			}
			if c := readState(t, state); c != "" {
				t.Fatalf("state file %q after nacks only", c)
			}
			g.set(false, false)
			exactlyOnce(t, p, "jentry", messages(first))
			cursors := tl.cursors(t, file)
			waitFor(t, 10*time.Second, "the checkpoint saved", func() bool { return readState(t, state) == cursors[99] })

			// Nacks again, with a checkpoint: it stays.
			g.set(true, false)
			second := entries("nack", 100, 50)
			tl.write(t, file, second)
			nacked := rr.r.Stats().EntriesNacked
			waitFor(t, 20*time.Second, "more nacks", func() bool { return rr.r.Stats().EntriesNacked >= nacked+50 })
			if st := rr.r.Stats(); st.Cursor != cursors[99] || readState(t, state) != cursors[99] {
				t.Fatalf("checkpoint moved on a nack: %q, file %q, want %q", st.Cursor, readState(t, state), cursors[99])
			}
			g.set(false, false)
			exactlyOnce(t, p, "jentry", append(messages(first), messages(second)...))
			rr.stop(t)
			if c, all := readState(t, state), tl.cursors(t, file); c != all[len(all)-1] {
				t.Fatalf("state file %q, want %q", c, all[len(all)-1])
			}
		})
	}
}

// Acks that come out of order move the checkpoint only over the acked
// prefix: while the first batch is held, the later ones are acked and
// the cursor stays put.
func TestOutOfOrderAcks(t *testing.T) {
	tl := needTools(t)
	p := ingesttest.Start(t, ingesttest.Direct)
	file := filepath.Join(t.TempDir(), "o.journal")
	es := entries("order", 0, 50)
	tl.write(t, file, es)
	g := &gateSink{next: p.Sink}
	g.set(false, true)
	rr := start(t, journald.Config{Source: file, StateDir: t.TempDir(), Sink: g, MaxBatch: 10, FlushInterval: 10 * time.Millisecond})
	waitFor(t, 20*time.Second, "the later batches acked", func() bool { return rr.r.Stats().EntriesAcked == 40 })
	if st := rr.r.Stats(); st.Cursor != "" || st.InFlight != 10 {
		t.Fatalf("checkpoint moved past an unacked batch: %+v", st)
	}
	if err := g.release(context.Background()); err != nil {
		t.Fatal(err)
	}
	cursors := tl.cursors(t, file)
	waitFor(t, 10*time.Second, "the checkpoint at the end", func() bool { return rr.r.Stats().Cursor == cursors[49] })
	exactlyOnce(t, p, "jentry", messages(es))
}

// journalctl that dies mid-stream, often and in the middle of entries,
// is started again after the last entry read: every entry once.
func TestJournalctlDiesMidStream(t *testing.T) {
	tl := needTools(t)
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("no /bin/bash for the wrapper script")
	}
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			dir := t.TempDir()
			file := filepath.Join(dir, "d.journal")
			es := entries("dies", 0, 120)
			tl.write(t, file, es)
			// A journalctl that does not follow, and whose output is cut
			// after 2000 bytes: each run ends, mostly inside an entry.
			script := filepath.Join(dir, "journalctl-cut")
			body := "#!/bin/bash\nargs=()\nfor a in \"$@\"; do [[ $a == --follow ]] || args+=(\"$a\"); done\n" +
				tl.journalctl + " \"${args[@]}\" | head -c 2000\n"
			if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
			rr := start(t, journald.Config{Source: file, StateDir: t.TempDir(), Sink: p.Sink, Journalctl: script,
				MaxBatch: 7, FlushInterval: 10 * time.Millisecond, RestartBackoff: 5 * time.Millisecond})
			exactlyOnce(t, p, "jentry", messages(es))
			if st := rr.r.Stats(); st.Restarts < 10 || st.EntriesRead != 120 || !strings.Contains(st.LastError, "journalctl") {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

// Binary and odd entries: a MESSAGE with NUL bytes and invalid UTF-8, a
// multi-line one, one over the size limit, a field given twice, a field
// too long to keep, an entry without MESSAGE.
func TestBinaryAndOddEntries(t *testing.T) {
	tl := needTools(t)
	for _, mode := range ingesttest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			p := ingesttest.Start(t, mode)
			file := filepath.Join(t.TempDir(), "b.journal")
			es := entries("odd", 0, 6)
			set := func(i int, name, v string) {
				for k := range es[i] {
					if es[i][k].name == name {
						es[i][k].value = v
						return
					}
				}
				es[i] = append(es[i], field{name, v})
			}
			set(0, "MESSAGE", "jentry odd bin\x00ary \xff\xfe end")
			set(1, "MESSAGE", "jentry odd first line\n\tsecond line")
			set(2, "MESSAGE", "jentry odd long "+strings.Repeat("é", 150000)) // 300 kB: longer than the read buffer
			es[3] = append(es[3], field{"TAG", "red"}, field{"TAG", "blue"}, field{"BIG", strings.Repeat("x", 5000)})
			es[4] = slices.DeleteFunc(es[4], func(f field) bool { return f.name == "MESSAGE" })
			set(4, "MARK", "nomessage")
			es[5] = slices.DeleteFunc(es[5], func(f field) bool { return f.name == "_HOSTNAME" })
			tl.write(t, file, es)
			rr := start(t, journald.Config{Source: file, StateDir: t.TempDir(), Host: "fallback-host", Sink: p.Sink,
				MaxMessageBytes: 121, FlushInterval: 10 * time.Millisecond})
			if n := p.WaitCount("_SYSTEMD_UNIT:odd.service", 6, 30*time.Second); n != 6 {
				t.Fatalf("%d entries indexed, want 6", n)
			}
			byOffset := map[int64]pipeline.Hit{}
			for _, h := range p.Hits("_SYSTEMD_UNIT:odd.service", 20) {
				byOffset[h.Offset] = h
			}
			hit := func(i int) pipeline.Hit { return byOffset[int64(i+1)] } // sequence numbers from 1
			check := func(i int, line string, flags ...string) {
				t.Helper()
				h := hit(i)
				if h.Line != line || !slices.Equal(sorted(h.Flags), sorted(flags)) {
					t.Errorf("entry %d: line %q flags %v, want %q %v", i, h.Line, h.Flags, line, flags)
				}
			}
			check(0, "jentry odd binary \uFFFD end", pipeline.FlagNUL, pipeline.FlagInvalidUTF8)
			check(1, "jentry odd first line\n\tsecond line")
			// 121 bytes: "jentry odd long " is 16, then 52 whole "é" (2 bytes each)
			// and half of one, dropped.
			check(2, "jentry odd long "+strings.Repeat("é", 52), pipeline.FlagTruncated)
			check(3, "jentry odd n00003", pipeline.FlagFieldsDropped)
			if f := hit(3).Fields; f["TAG"] != "red\nblue" || f["BIG"] != "" {
				t.Errorf("repeated and long fields: TAG %q, BIG %d bytes", f["TAG"], len(f["BIG"]))
			}
			check(4, "")
			if hit(4).Fields["MARK"] != "nomessage" {
				t.Errorf("entry without MESSAGE: %+v", hit(4))
			}
			if h := hit(5); h.Host != "fallback-host" || hit(0).Host != "jhost" {
				t.Errorf("hosts %q %q, want fallback-host jhost", h.Host, hit(0).Host)
			}
			if n := p.Count(`"second line"`); n != 1 {
				t.Errorf("the multi-line message's second line: %d hits", n)
			}
			st := rr.r.Stats()
			if st.Truncated != 1 || st.Sanitized != 1 || st.FieldsDropped != 1 || st.EntriesRead != 6 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Start "tail" skips what the journal held and saves that position at
// once; a cursor journalctl rejects is warned about and reading starts
// as without one, without doubles.
func TestStartTailAndBadCursor(t *testing.T) {
	tl := needTools(t)
	p := ingesttest.Start(t, ingesttest.Direct)
	file := filepath.Join(t.TempDir(), "t.journal")
	old := entries("old", 0, 30)
	tl.write(t, file, old)
	state := t.TempDir()
	cfg := journald.Config{Source: file, StateDir: state, Sink: p.Sink, Start: journald.StartTail, FlushInterval: 10 * time.Millisecond, RestartBackoff: 20 * time.Millisecond}
	rr := start(t, cfg)
	last := tl.cursors(t, file)[29]
	waitFor(t, 10*time.Second, "the tail cursor saved", func() bool { return readState(t, state) == last })
	fresh := entries("fresh", 0, 20)
	tl.write(t, file, fresh)
	exactlyOnce(t, p, "jentry", messages(fresh))
	rr.stop(t)

	// A cursor journalctl cannot seek to: read from the head; what is
	// held already is not indexed again.
	if err := os.WriteFile(filepath.Join(state, journald.StateFile), []byte("not-a-cursor\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Start = journald.StartHead
	rr = start(t, cfg)
	exactlyOnce(t, p, "jentry", append(messages(old), messages(fresh)...))
	all := tl.cursors(t, file)
	waitFor(t, 10*time.Second, "the checkpoint at the end", func() bool { return rr.r.Stats().Cursor == all[len(all)-1] })
	if st := rr.r.Stats(); !strings.Contains(st.LastError, "cursor") || st.EntriesRead != 50 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewChecks(t *testing.T) {
	sink := ingesttest.Start(t, ingesttest.Direct).Sink
	for name, cfg := range map[string]journald.Config{
		"no sink":         {StateDir: t.TempDir()},
		"no state":        {Sink: sink},
		"missing source":  {Sink: sink, StateDir: t.TempDir(), Source: filepath.Join(t.TempDir(), "nope")},
		"bad start":       {Sink: sink, StateDir: t.TempDir(), Start: "middle"},
		"no such program": {Sink: sink, StateDir: t.TempDir(), Journalctl: "/nonexistent/journalctl"},
	} {
		if _, err := journald.New(cfg, ingesttest.Quiet); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLevelAndIdentity(t *testing.T) {
	for p, want := range map[string]string{"0": "emerg", "3": "err", "4": "warning", "7": "debug", "8": "", "": "", "10": ""} {
		if got := journald.Level(p); got != want {
			t.Errorf("Level(%q) = %q, want %q", p, got, want)
		}
	}
	id, off := journald.Identity("s=8240229a28af44b3a8e10c70014ceb61;i=1f;b=0123;m=3e8;t=60a24181e4000;x=350a", "", -1, "")
	if id != "journal:8240229a28af44b3a8e10c70014ceb61" || off != 31 {
		t.Errorf("identity %q %d", id, off)
	}
	if id, off := journald.Identity("b=abc;m=1", "77", 12, ""); id != "journal:77" || off != 12 {
		t.Errorf("seqnum fallback: %q %d", id, off)
	}
	id1, off1 := journald.Identity("b=abc;m=1", "", -1, "")
	id2, off2 := journald.Identity("b=abc;m=1", "", -1, "")
	id3, off3 := journald.Identity("b=abc;m=2", "", -1, "")
	if id1 != "journal:abc" || id1 != id2 || off1 != off2 || off1 == off3 || id3 != id1 || off1 < 0 {
		t.Errorf("hashed fallback: %q %d, %q %d, %q %d", id1, off1, id2, off2, id3, off3)
	}
}

// stuckSink takes one batch and never answers it, then blocks.
type stuckSink struct{ took chan struct{} }

func (s stuckSink) Publish(ctx context.Context, b *pipeline.Batch) error {
	select {
	case s.took <- struct{}{}:
		return nil
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// A reader stopped while its writer neither answers nor takes batches
// returns after DrainTimeout, with journalctl gone, nothing counted as
// nacked and no checkpoint.
func TestStopWhileStuck(t *testing.T) {
	tl := needTools(t)
	file := filepath.Join(t.TempDir(), "s.journal")
	tl.write(t, file, entries("stuck", 0, 50))
	sink := stuckSink{took: make(chan struct{}, 1)}
	state := t.TempDir()
	rr := start(t, journald.Config{Source: file, StateDir: state, Sink: sink, MaxBatch: 10, DrainTimeout: 300 * time.Millisecond})
	waitFor(t, 10*time.Second, "a batch taken", func() bool { return len(sink.took) == 1 && rr.r.Stats().EntriesRead > 0 })
	time.Sleep(100 * time.Millisecond)
	pid := rr.r.Stats().PID
	if pid == 0 {
		t.Fatal("no journalctl PID while following")
	}
	began := time.Now()
	rr.stop(t)
	if el := time.Since(began); el > 5*time.Second {
		t.Errorf("Run took %v to return", el)
	}
	st := rr.r.Stats()
	if st.EntriesRead != 10 || st.EntriesNacked != 0 || st.EntriesAcked != 0 || st.Cursor != "" || st.PID != 0 || st.InFlight != 10 {
		t.Errorf("stats %+v", st)
	}
	if c := readState(t, state); c != "" {
		t.Errorf("state file %q", c)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("journalctl %d still exists: %v", pid, err)
	}
}
