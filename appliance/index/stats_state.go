package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"slices"
	"strings"

	"github.com/logbox/logbox/appliance/pipeline"
)

// StatsState is a stats answer before its rows: every group with its
// exact partial aggregates (sums, bounds, the values of a quantile, the
// distinct values of count_distinct). The fleet asks each indexer for
// the state of its partitions and merges them with MergeStats, so a
// fleet's stats equal one index's over the same lines.
type StatsState struct {
	Total  uint64
	Capped bool
	Groups []StatsStateGroup
}

// StatsStateGroup is one group of a StatsState.
type StatsStateGroup struct {
	Vals  []string
	Times []int64
	Count uint64
	Accs  []StatsStateAcc
}

// StatsStateAcc is one function's partial aggregate in a group.
type StatsStateAcc struct {
	N             uint64
	Sum, Min, Max float64
	Vals          []float64
	Distinct      []string
}

// StatsState runs req (a query with a stats pipe) and returns its state.
func (ix *Index) StatsState(ctx context.Context, req pipeline.StatsRequest) (StatsState, error) {
	_, groups, total, capped, err := ix.statsGroups(ctx, req)
	if err != nil {
		return StatsState{}, err
	}
	st := StatsState{Total: total, Capped: capped, Groups: make([]StatsStateGroup, 0, len(groups))}
	for _, g := range groups {
		sg := StatsStateGroup{Vals: g.vals, Times: g.times, Count: g.count, Accs: make([]StatsStateAcc, len(g.accs))}
		for i := range g.accs {
			a := &g.accs[i]
			sa := StatsStateAcc{N: a.n, Sum: a.sum, Min: a.min, Max: a.max, Vals: a.vals}
			for v := range a.distinct {
				sa.Distinct = append(sa.Distinct, v)
			}
			sg.Accs[i] = sa
		}
		st.Groups = append(st.Groups, sg)
	}
	return st, nil
}

// MergeStats merges the states of one stats query (as StatsState gave
// them, from disjoint sets of lines) into its answer.
func MergeStats(query string, states []StatsState) (pipeline.StatsResult, error) {
	res := pipeline.StatsResult{Columns: []string{}, Rows: [][]any{}}
	_, plan, _, err := compilePiped(query)
	if err != nil {
		return res, err
	}
	if plan == nil {
		return res, &pipeline.QueryError{Msg: "needs a stats pipe, e.g. error | stats count() by (host)", Pos: len(query) + 1}
	}
	ws := make([]statsWorker, len(states))
	var key []byte
	for w, st := range states {
		res.Total += st.Total
		ws[w].capped = st.Capped
		ws[w].groups = make(map[string]*statGroup, len(st.Groups))
		for _, sg := range st.Groups {
			if len(sg.Vals) != len(plan.by) || len(sg.Times) != len(plan.by) || len(sg.Accs) != len(plan.funcs) {
				return res, fmt.Errorf("merge stats %q: a state has %d by values and %d functions, the query %d and %d",
					query, len(sg.Vals), len(sg.Accs), len(plan.by), len(plan.funcs))
			}
			g := &statGroup{vals: sg.Vals, times: sg.Times, count: sg.Count, accs: make([]statAcc, len(sg.Accs))}
			for i, sa := range sg.Accs {
				a := statAcc{n: sa.N, sum: sa.Sum, min: sa.Min, max: sa.Max, vals: slices.Clone(sa.Vals)}
				if len(sa.Distinct) > 0 {
					a.distinct = make(map[string]struct{}, len(sa.Distinct))
					for _, v := range sa.Distinct {
						a.distinct[v] = struct{}{}
					}
				}
				g.accs[i] = a
			}
			key = key[:0]
			for k := range plan.by {
				key = binary.LittleEndian.AppendUint64(key, uint64(sg.Times[k]))
				key = binary.AppendUvarint(key, uint64(len(sg.Vals[k])))
				key = append(key, sg.Vals[k]...)
			}
			g.key = string(key)
			ws[w].groups[g.key] = g
		}
	}
	groups := map[string]*statGroup{}
	capped := false
	if len(ws) > 0 {
		groups, capped = plan.merge(ws)
	}
	plan.answer(&res, groups, res.Total, capped)
	return res, nil
}

// EncodeStatsState writes st for the wire (gob: sums and bounds may be
// infinite, which JSON cannot carry).
func EncodeStatsState(st StatsState) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		return nil, fmt.Errorf("encode stats state: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeStatsState reads what EncodeStatsState wrote.
func DecodeStatsState(b []byte) (StatsState, error) {
	var st StatsState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return st, fmt.Errorf("decode stats state: %w", err)
	}
	return st, nil
}

// CompareSort orders two hits' sort keys (pipeline.Hit.Sort) as a search
// lists them, newest first; a key that does not decode sorts last.
func CompareSort(a, b string) int {
	ka, ea := decodeCursor(a)
	kb, eb := decodeCursor(b)
	switch {
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return 1
	case eb != nil:
		return -1
	}
	return -cmpKey(&ka, &kb)
}
