package tailer

import (
	"regexp"
	"strings"

	"github.com/logbox/logbox/appliance/pipeline"
)

// event is one record's worth of text: a line, or lines joined by the
// multiline rule.
type event struct {
	text       string
	start, end int64
	flags      []string
}

// joiner groups lines into events by a pattern, so a stack trace is one
// record. In continuation mode a line matching the pattern belongs to the
// event before it; in start mode a matching line starts a new event and
// the others belong to the one before.
type joiner struct {
	re        *regexp.Regexp
	startMode bool
	maxLines  int
	maxBytes  int

	cur   strings.Builder
	ev    event
	lines int
}

func newJoiner(m *pipeline.Multiline, maxBytes int) (*joiner, error) {
	re, err := regexp.Compile(m.Pattern)
	if err != nil {
		return nil, err
	}
	return &joiner{re: re, startMode: m.Match == pipeline.MultilineStart, maxLines: m.MaxLinesOrDefault(), maxBytes: maxBytes}, nil
}

// push adds a line and emits the events it completes.
func (j *joiner) push(text string, start, end int64, flags []string, emit func(event)) {
	matches := j.re.MatchString(text)
	startsNew := matches == j.startMode
	if j.lines > 0 && (startsNew || j.lines >= j.maxLines) {
		if !startsNew {
			j.ev.flags = appendFlag(j.ev.flags, pipeline.FlagMultiSplit)
		}
		j.flush(emit)
	}
	if j.lines == 0 {
		j.ev = event{start: start}
	} else if j.cur.Len() < j.maxBytes {
		j.cur.WriteByte('\n')
	}
	room := j.maxBytes - j.cur.Len()
	if len(text) > room {
		text = strings.ToValidUTF8(text[:max(room, 0)], "")
		j.ev.flags = appendFlag(j.ev.flags, pipeline.FlagTruncated)
	}
	j.cur.WriteString(text)
	for _, f := range flags {
		j.ev.flags = appendFlag(j.ev.flags, f)
	}
	j.ev.end = end
	j.lines++
}

// pending reports whether an event is being built.
func (j *joiner) pending() bool { return j.lines > 0 }

// flush emits the event being built, if any.
func (j *joiner) flush(emit func(event)) {
	if j.lines == 0 {
		return
	}
	j.ev.text = j.cur.String()
	emit(j.ev)
	j.cur.Reset()
	j.lines = 0
	j.ev = event{}
}

func appendFlag(flags []string, f string) []string {
	for _, have := range flags {
		if have == f {
			return flags
		}
	}
	return append(flags, f)
}
