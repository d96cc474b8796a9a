package kafkain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/logbox/logbox/appliance/atomicfile"
	"github.com/logbox/logbox/appliance/pipeline"
)

// Coverage is what the consumer knows the index holds: the Kafka offsets
// of every batch the writer acked, per partition (pipeline.PartName),
// read by the group or by a gap filler. Offsets skipped inside a run the
// consumer read without a break (compacted away, transaction markers) are
// covered with their neighbours. It is loaded from Config.CoverageFile at
// the start of Run; before that, and without a file, it starts empty.
// The returned value is a copy.
//
// Coverage only grows while the process runs: lines the index drops later
// (its retention) stay covered.
func (c *Consumer) Coverage() pipeline.Coverage {
	c.covMu.Lock()
	defer c.covMu.Unlock()
	return c.cov.Clone()
}

// Assigned returns the partitions (pipeline.PartName) the consumer group
// has given this consumer now, sorted; none between sessions (while the
// group rebalances) and after Run returns.
func (c *Consumer) Assigned() []string {
	c.covMu.Lock()
	defer c.covMu.Unlock()
	out := make([]string, 0, len(c.assigned))
	for p := range c.assigned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// claimed records that a claim of part begins (+1) or ends (-1).
func (c *Consumer) claimed(part string, delta int) {
	c.covMu.Lock()
	defer c.covMu.Unlock()
	if c.assigned[part] += delta; c.assigned[part] <= 0 {
		delete(c.assigned, part)
	}
}

// addCoverage records [from, to) of part as held by the index.
func (c *Consumer) addCoverage(part string, from, to int64) {
	if to <= from {
		return
	}
	c.covMu.Lock()
	defer c.covMu.Unlock()
	c.cov.Add(part, from, to)
	c.covVersion++
}

// coverageFile is the JSON of Config.CoverageFile:
// {"version":1,"coverage":{"logbox/0":[[0,1200]],…}}.
type coverageFile struct {
	Version  int               `json:"version"`
	Coverage pipeline.Coverage `json:"coverage"`
}

const coverageFileVersion = 1

// loadCoverage reads Config.CoverageFile, if set, into the coverage. A
// missing file is a first start. A file that cannot be read or parsed is
// logged and coverage starts empty: the gap filler (if on) then reads the
// claimed partitions again from their earliest offsets, and the index
// skips what it holds, so nothing is lost, but it costs a full re-read.
func (c *Consumer) loadCoverage() {
	path := c.cfg.CoverageFile
	if path == "" {
		return
	}
	cov, err := readCoverage(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		c.log.Warn("kafka coverage file unreadable; starting with no coverage: partitions are read again from Kafka (when gap fill is on) and the fleet sees this indexer as holding only what it reads from now on until then; nothing to do unless it recurs, then check the disk",
			"path", path, "err", err)
		return
	}
	c.covMu.Lock()
	c.cov = cov
	c.covSaved = c.covVersion
	c.covMu.Unlock()
	c.log.Info("kafka coverage loaded", "path", path, "partitions", len(cov))
}

// readCoverage parses a coverage file; ranges are checked and merged again
// rather than trusted.
func readCoverage(path string) (pipeline.Coverage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kafka coverage %q: %w", path, err)
	}
	var f coverageFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse kafka coverage %q: %w", path, err)
	}
	if f.Version != coverageFileVersion {
		return nil, fmt.Errorf("kafka coverage %q: version %d, want %d", path, f.Version, coverageFileVersion)
	}
	cov := pipeline.Coverage{}
	for part, rs := range f.Coverage {
		for _, r := range rs {
			if r[0] < 0 || r[1] <= r[0] {
				return nil, fmt.Errorf("kafka coverage %q: partition %q has the bad range [%d, %d)", path, part, r[0], r[1])
			}
			cov.Add(part, r[0], r[1])
		}
	}
	return cov, nil
}

// saveCoverage writes the coverage to Config.CoverageFile if it changed
// since the last write. A failure is logged (once until a write works
// again) and retried on the next call.
func (c *Consumer) saveCoverage() {
	path := c.cfg.CoverageFile
	if path == "" {
		return
	}
	// One write at a time, the newest last.
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.covMu.Lock()
	if c.covVersion == c.covSaved {
		c.covMu.Unlock()
		return
	}
	version := c.covVersion
	b, err := json.Marshal(coverageFile{Version: coverageFileVersion, Coverage: c.cov})
	c.covMu.Unlock()
	if err == nil {
		err = atomicfile.Write(path, b)
	}
	if err != nil {
		if !c.covFailing {
			c.log.Warn("cannot write the kafka coverage file; after a restart the partitions read since the last write are read again from Kafka (nothing is lost); check the data directory's disk",
				"path", path, "err", err)
		}
		c.covFailing = true
		return
	}
	c.covFailing = false
	c.covMu.Lock()
	c.covSaved = version
	c.covMu.Unlock()
}

// coverageSaveInterval is how often, at most, the coverage file is
// rewritten while coverage changes.
const coverageSaveInterval = time.Second

// persistCoverage saves the coverage every coverageSaveInterval until ctx
// ends. Run saves it once more at the end, after every batch is settled.
func (c *Consumer) persistCoverage(ctx context.Context) {
	t := time.NewTicker(coverageSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.saveCoverage()
		}
	}
}
