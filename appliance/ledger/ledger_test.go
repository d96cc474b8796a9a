package ledger

import (
	"reflect"
	"testing"
	"time"
)

func TestBuild(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-time.Hour)
	type want struct {
		state                      string
		indexed, inFlight, gapByte int64
		gaps                       []Gap
	}
	f := func(name string, in Input, file File, cov *Coverage, w want) {
		t.Helper()
		in.Files = []File{file}
		in.Now = now
		if in.Grace == 0 {
			in.Grace = time.Minute
		}
		in.Coverage = func(id string) (Coverage, bool) {
			if cov == nil || id != file.FileID {
				return Coverage{}, false
			}
			return *cov, true
		}
		l := Build(in)
		if len(l.Files) != 1 || len(l.Sources) != 1 {
			t.Fatalf("%s: %+v", name, l)
		}
		got := l.Files[0]
		if got.State != w.state || got.IndexedBytes != w.indexed || got.InFlightBytes != w.inFlight || got.GapBytes != w.gapByte || !reflect.DeepEqual(got.Gaps, w.gaps) {
			t.Errorf("%s: got state %s indexed %d in flight %d gap %d gaps %+v; want %+v", name, got.State, got.IndexedBytes, got.InFlightBytes, got.GapBytes, got.Gaps, w)
		}
		if s := l.Sources[0]; s.State != w.state && !(w.state == StateShipped && s.State == StateShipped) {
			t.Errorf("%s: source state %s, want %s", name, s.State, w.state)
		}
	}
	idx := Input{Indexes: true}
	done := File{Source: "s", FileID: "f", Size: 1000, Read: 1000, Acked: 1000, AckedAt: old, Followed: true}
	f("all held", idx, done, &Coverage{Lines: 10, Held: []Span{{0, 1000}}}, want{state: StateComplete, indexed: 1000})
	f("held beyond acked (checkpoint not flushed yet)", idx, done, &Coverage{Held: []Span{{0, 1200}}}, want{state: StateComplete, indexed: 1000})
	f("a hole, long acked", idx, done, &Coverage{Held: []Span{{0, 400}, {600, 1000}}},
		want{state: StateGap, indexed: 800, gapByte: 200, gaps: []Gap{{Span{400, 600}, 200, ReasonNotIndexed}}})
	f("nothing held", idx, done, nil,
		want{state: StateGap, gapByte: 1000, gaps: []Gap{{Span{0, 1000}, 1000, ReasonNotIndexed}}})
	f("the tail on its way (consumer lag)", Input{Indexes: true, Pending: true}, done, &Coverage{Held: []Span{{0, 700}}},
		want{state: StateCatchingUp, indexed: 700, inFlight: 300})
	recent := done
	recent.AckedAt = now.Add(-time.Second)
	f("the tail on its way (acked just now)", idx, recent, &Coverage{Held: []Span{{0, 700}}},
		want{state: StateCatchingUp, indexed: 700, inFlight: 300})
	f("retention dropped the head", idx, done, &Coverage{Held: []Span{{300, 1000}}, RetentionDroppedTo: 300},
		want{state: StateComplete, indexed: 700, gaps: []Gap{{Span{0, 300}, 300, ReasonRetention}}})
	f("retention and a gap in one hole", idx, done, &Coverage{Held: []Span{{500, 1000}}, RetentionDroppedTo: 300},
		want{state: StateGap, indexed: 500, gapByte: 200, gaps: []Gap{{Span{0, 300}, 300, ReasonRetention}, {Span{300, 500}, 200, ReasonNotIndexed}}})
	reading := done
	reading.Read, reading.Acked = 900, 800
	f("read, not acked yet", idx, reading, &Coverage{Held: []Span{{0, 800}}}, want{state: StateCatchingUp, indexed: 800, inFlight: 100})
	f("lines of unknown range", idx, done, &Coverage{Lines: 3, UnknownLines: 1, Held: []Span{{0, 10}}}, want{state: StateUnknown})
	f("agent", Input{}, done, nil, want{state: StateShipped})
	gone := File{Source: "s", FileID: "f", Size: 1000, Read: 600, Acked: 600, AckedAt: old, Deleted: true}
	f("deleted before read to its end", idx, gone, &Coverage{Held: []Span{{0, 600}}},
		want{state: StateGap, indexed: 600, gapByte: 400, gaps: []Gap{{Span{600, 1000}, 400, ReasonDeletedUnread}}})
	f("deleted before read to its end, agent", Input{}, gone, nil,
		want{state: StateGap, gapByte: 400, gaps: []Gap{{Span{600, 1000}, 400, ReasonDeletedUnread}}})
	gone.Followed = true
	f("deleted, still being read", idx, gone, &Coverage{Held: []Span{{0, 600}}}, want{state: StateCatchingUp, indexed: 600})
}

func TestBuildSources(t *testing.T) {
	now := time.Now()
	files := []File{
		{Source: "b", FileID: "1", Size: 10, Read: 10, Acked: 10, Followed: true},
		{Source: "a", FileID: "2", Size: 10, Read: 10, Acked: 10, Followed: true},
		{Source: "a", FileID: "3", Size: 10, Read: 10, Acked: 10, Followed: true},
	}
	held := map[string][]Span{"1": {{0, 10}}, "2": {{0, 10}}, "3": {{0, 4}}}
	l := Build(Input{Files: files, Indexes: true, Now: now, Grace: time.Nanosecond, Coverage: func(id string) (Coverage, bool) {
		return Coverage{Held: held[id]}, true
	}})
	want := []SourceLedger{
		{Source: "a", State: StateGap, Files: 2, Complete: 1, WithGaps: 1, GapBytes: 6, AckedBytes: 20, IndexedBytes: 14},
		{Source: "b", State: StateComplete, Files: 1, Complete: 1, AckedBytes: 10, IndexedBytes: 10},
	}
	if !reflect.DeepEqual(l.Sources, want) {
		t.Fatalf("sources %+v\nwant %+v", l.Sources, want)
	}
	if l.Files[0].Source != "a" || l.Files[2].Source != "b" {
		t.Fatalf("files not sorted: %+v", l.Files)
	}
}
