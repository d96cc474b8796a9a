package patterns

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// The Drain tree (He et al., "Drain: An Online Log Parsing Approach with
// Fixed Depth Tree", 2017), over masked lines instead of raw ones.
//
// A masked line goes down a tree by its number of words and its first
// word (a word with a masked part goes to the <*> branch, a KEY=value
// word to its KEY= branch, and so does any word once a node has
// maxChildren branches), to a leaf that holds templates of that length.
// There it joins the template it is most similar to (the share of places
// where the template's word is the line's, a <*> or a KEY=<*> over another
// value not counting; ties: the template with more of those, then the
// older one) when that share is at least threshold,
// and the template's words that differ from the line's become <*> (KEY=<*>
// when both are KEY=… words); else it starts a template of its own.
//
// The miner feeds each distinct masked line once, in a fixed order (most
// lines first, then by text), with its count: a masked line belongs to
// exactly one template, so the templates' counts add up to the total and
// the result does not depend on how the lines were read.

const (
	threshold   = 0.5
	maxChildren = 100
	anyBranch   = Wildcard
)

type drain struct {
	roots    map[int]*dnode
	clusters []*cluster
	// stamp[c] == gen marks cluster c as looked at for the line being
	// added; probes is reused.
	stamp  []uint32
	gen    uint32
	probes []probe
}

type dnode struct {
	kids     map[string]*dnode
	clusters []int32
	// post lists, by place and word, the clusters of this leaf whose
	// template has (or had) that word there: a template that shares no
	// word with a line cannot be similar to it.
	post map[place][]int32
}

type place struct {
	i int
	w string
}

type probe struct{ i, n int }

type cluster struct {
	toks []tmplTok
	keys []int32 // indices of the masked lines in it
}

func newDrain() *drain { return &drain{roots: map[int]*dnode{}} }

// branch is the branch word w takes.
func branch(w string) string {
	if strings.Contains(w, "<*") {
		return anyBranch
	}
	if k := keyPrefix(w); k > 0 {
		return w[:k]
	}
	return w
}

// add puts masked line key (its words) into a template and returns the
// template's index.
func (d *drain) add(words []string, key int32) int32 {
	n := d.roots[len(words)]
	if n == nil {
		n = &dnode{kids: map[string]*dnode{}}
		d.roots[len(words)] = n
	}
	if len(words) > 0 {
		b := branch(words[0])
		next := n.kids[b]
		if next == nil {
			if len(n.kids) >= maxChildren && b != anyBranch {
				b = anyBranch
				next = n.kids[b]
			}
			if next == nil {
				next = &dnode{}
				n.kids[b] = next
			}
		}
		n = next
	}
	if n.post == nil {
		n.post = map[place][]int32{}
	}
	best := d.best(n, words)
	if best >= 0 {
		c := d.clusters[best]
		for i, w := range words {
			t := generalize(c.toks[i], w)
			if t.kind == tKey && c.toks[i].kind == tLit {
				pl := place{i, t.s + Wildcard}
				n.post[pl] = append(n.post[pl], best)
			}
			c.toks[i] = t
		}
		c.keys = append(c.keys, key)
		return best
	}
	c := &cluster{toks: make([]tmplTok, len(words)), keys: []int32{key}}
	ci := int32(len(d.clusters))
	for i, w := range words {
		c.toks[i] = parseTok(w)
		if c.toks[i].kind != tAny {
			pl := place{i, w}
			n.post[pl] = append(n.post[pl], ci)
		}
	}
	d.clusters = append(d.clusters, c)
	d.stamp = append(d.stamp, 0)
	n.clusters = append(n.clusters, ci)
	return ci
}

// best returns the cluster of leaf n that a line of words joins, or -1:
// of those whose similarity is at least threshold, the most similar
// (ties: more parameters, then the older). Similar means at least need
// places where the template's word is the line's, so such a cluster is
// listed under one of any len(words)-need+1 places: the leaf's lists of
// the places with the shortest lists are read, not every cluster.
func (d *drain) best(n *dnode, words []string) int32 {
	if len(words) == 0 {
		if len(n.clusters) > 0 {
			return n.clusters[0]
		}
		return -1
	}
	need := int(math.Ceil(threshold * float64(len(words))))
	d.probes = d.probes[:0]
	for i, w := range words {
		d.probes = append(d.probes, probe{i, len(n.post[place{i, w}])})
	}
	slices.SortFunc(d.probes, func(a, b probe) int { return cmp.Or(cmp.Compare(a.n, b.n), cmp.Compare(a.i, b.i)) })
	d.gen++
	best, bestSim, bestAny := int32(-1), -1.0, -1
	for _, pr := range d.probes[:len(words)-need+1] {
		for _, ci := range n.post[place{pr.i, words[pr.i]}] {
			if d.stamp[ci] == d.gen {
				continue
			}
			d.stamp[ci] = d.gen
			if !reaches(d.clusters[ci].toks, words, need) {
				continue
			}
			sim, anys := similarity(d.clusters[ci].toks, words)
			if sim > bestSim || sim == bestSim && (anys > bestAny || anys == bestAny && ci < best) {
				best, bestSim, bestAny = ci, sim, anys
			}
		}
	}
	return best
}

// similarity is the share of places where the template's word is the
// line's (a <*>, or a KEY=<*> over another value, does not count: Drain's
// parameters), and the number of parameters.
func similarity(toks []tmplTok, words []string) (float64, int) {
	if len(words) == 0 {
		return 1, 0
	}
	fit, anys := 0, 0
	for i := range toks {
		t := &toks[i]
		switch t.kind {
		case tAny:
			anys++
		case tLit:
			if t.s == words[i] {
				fit++
			}
		case tKey:
			// KEY=<*> counts as the line's word only when that is KEY=<*>
			// too (a masked value); any other KEY= value is a variable,
			// as <*> is.
			if w := words[i]; len(w) == len(t.s)+len(Wildcard) && strings.HasPrefix(w, t.s) && strings.HasSuffix(w, Wildcard) {
				fit++
			} else if strings.HasPrefix(w, t.s) {
				anys++
			}
		}
	}
	return float64(fit) / float64(len(words)), anys
}

// reaches says whether the template's word is the line's in at least
// need places (similarity's count), stopping as soon as it cannot be.
func reaches(toks []tmplTok, words []string, need int) bool {
	fit, left := 0, len(words)
	for i := range toks {
		if fit >= need {
			return true
		}
		if fit+left < need {
			return false
		}
		left--
		t := &toks[i]
		switch t.kind {
		case tLit:
			if t.s == words[i] {
				fit++
			}
		case tKey:
			if w := words[i]; len(w) == len(t.s)+len(Wildcard) && strings.HasPrefix(w, t.s) && strings.HasSuffix(w, Wildcard) {
				fit++
			}
		}
	}
	return fit >= need
}

// generalize returns template word t made to fit line word w too.
func generalize(t tmplTok, w string) tmplTok {
	switch t.kind {
	case tAny:
		return t
	case tLit:
		if t.s == w {
			return t
		}
		if k := keyPrefix(t.s); k > 0 && k == keyPrefix(w) && t.s[:k] == w[:k] {
			return tmplTok{s: t.s[:k], kind: tKey}
		}
	case tKey:
		if strings.HasPrefix(w, t.s) {
			return t
		}
	}
	return tmplTok{s: Wildcard, kind: tAny}
}

// text writes a template's words.
func templateText(toks []tmplTok) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.s)
		if t.kind == tKey {
			b.WriteString(Wildcard)
		}
	}
	return b.String()
}
