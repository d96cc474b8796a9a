package patterns

import "strings"

// The masking tokenizer.
//
// Mask turns a line into its masked form: the line's words (cut at ASCII
// white space; a quoted string that holds white space stays inside its
// word) joined by single spaces, with the parts that vary from line to
// line replaced by Wildcard. Within a word, these are masked:
//
//   - quoted strings, "…" and '…' (a backslash escapes the quote), where a
//     quote starts the word or follows one of = : ( [ { , < and the
//     closing quote ends the word or is followed by one of , ; : ) ] } > .
//     ! ? or a quote; a "quoted" string right before a colon, without
//     white space, is a JSON key and is kept
//   - UUIDs, MAC addresses, IPv4 addresses (with :port and /prefix), IPv6
//     addresses (with :: or eight groups)
//   - dates (2024-01-02, 2024/01/02, 02/Jan/2024, with a time after T),
//     times of day (10:04, 10:04:05.123, with a zone), and a month or
//     weekday name in front of a day (Jan 2, Mon Jan)
//   - e-mail addresses, 0x… hex numbers and runs of 8 or more hex digits
//   - numbers (signed after = : ( [ { , <; decimals and versions; a unit of
//     up to four letters after them is kept: 200ms → <*>ms)
//   - any other run of letters and digits that starts with a digit, or
//     has two or more groups of digits, or four or more digits (ids such
//     as req7f3a9, user1234; but not sha256, node1)
//
// Everything else (punctuation, words without digits, key names) is kept
// as written, so KEY=VALUE keeps its key: user=42 → user=<*>. A word that
// is still longer than MaxTokenBytes once masked becomes Wildcard, and a
// line of more than MaxTokens words keeps MaxTokens-1 of them followed by
// RestToken. The masked form of a line is its key: the miner counts lines
// per key, and a template fits a line when it fits the line's key (see
// Template.FitsKey), so counting, mining and filtering agree exactly.
//
// Mask allocates nothing beyond growing dst.

// Wildcard stands for a variable part of a line in masked lines and in
// templates.
const Wildcard = "<*>"

// RestToken is the last word of the masked form of a line with more than
// MaxTokens words: it stands for the words past MaxTokens-1.
const RestToken = "<*…>"

// Bounds of a masked line.
const (
	MaxTokens     = 128
	MaxTokenBytes = 1024
)

// Byte classes.
const (
	cBlank = 1 << iota // ASCII white space: separates words
	cDigit             // 0-9
	cHex               // 0-9, a-f, A-F
	cAlpha             // letters, _ and bytes of multi-byte UTF-8 characters
	cOpen              // = : ( [ { , < : a quote or a sign may start after it
	cClose             // , ; : ) ] } > . ! ? " ' : may follow a closing quote
	cWord  = cDigit | cAlpha
)

var class = func() (t [256]uint8) {
	for _, c := range " \t\n\r\v\f" {
		t[c] |= cBlank
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= cDigit | cHex
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cAlpha
		t[c-'a'+'A'] |= cAlpha
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= cHex
		t[c-'a'+'A'] |= cHex
	}
	t['_'] |= cAlpha
	for c := 0x80; c < 0x100; c++ {
		t[c] |= cAlpha
	}
	for _, c := range "=:([{,<" {
		t[c] |= cOpen
	}
	for _, c := range ",;:)]}>.!?\"'" {
		t[c] |= cClose
	}
	return t
}()

func isDigit(c byte) bool { return class[c]&cDigit != 0 }
func isHex(c byte) bool   { return class[c]&cHex != 0 }
func isWord(c byte) bool  { return class[c]&cWord != 0 }
func isBlank(c byte) bool { return class[c]&cBlank != 0 }

// Mask appends the masked form of line to dst (see the top of this file).
func Mask(dst []byte, line string) []byte {
	m := masker{s: line, dst: dst, at: strings.IndexByte(line, '@')}
	m.run()
	return m.dst
}

type masker struct {
	s   string
	dst []byte
	// noQuote[k] is set once a search for a closing " (k 0) or ' (k 1)
	// reached the end of the line: later ones fail at once, so a line
	// costs linear time whatever its quotes.
	noQuote [2]bool
	// at is the index of the first '@' at or after the last position
	// asked (nextAt), -1 for none.
	at int
}

func (m *masker) run() {
	s := m.s
	n := len(s)
	ntok, last := 0, 0
	for i := 0; ; {
		for i < n && isBlank(s[i]) {
			i++
		}
		if i >= n {
			return
		}
		if ntok == MaxTokens {
			m.dst = append(m.dst[:last], RestToken...)
			return
		}
		if ntok > 0 {
			m.dst = append(m.dst, ' ')
		}
		start := len(m.dst)
		i = m.word(i)
		if len(m.dst)-start > MaxTokenBytes {
			m.dst = append(m.dst[:start], Wildcard...)
		}
		last = start
		ntok++
	}
}

func (m *masker) wild() { m.dst = append(m.dst, Wildcard...) }

// word masks the word that starts at i and returns where it ends.
func (m *masker) word(i int) int {
	s := m.s
	n := len(s)
	ws := i
	if i+3 <= n && (i+3 == n || isBlank(s[i+3])) && s[i] >= 'A' && s[i] <= 'Z' {
		if name := s[i : i+3]; isMonth(name) && dayNext(s, i+3) || isWeekday(name) && monthNext(s, i+3) {
			m.wild()
			return i + 3
		}
	}
	for i < n {
		c := s[i]
		cl := class[c]
		if cl&cBlank != 0 {
			break
		}
		if cl&cWord != 0 {
			// A run of letters and digits starts here (the byte before is
			// not one: runs are taken whole).
			j, all := i+1, cl
			for j < n && isWord(s[j]) {
				all &= class[s[j]]
				cl |= class[s[j]]
				j++
			}
			if e := m.variable(i, j, all); e > i {
				m.wild()
				i = e
				continue
			}
			if cl&cDigit != 0 && runVaries(s[i:j]) {
				m.wild()
			} else {
				m.dst = append(m.dst, s[i:j]...)
			}
			i = j
			continue
		}
		opens := i == ws || class[s[i-1]]&cOpen != 0
		switch {
		case (c == '"' || c == '\'') && opens:
			if e := m.quoteEnd(i); e > 0 {
				if c == '"' && e < n && s[e] == ':' && !hasBlank(s[i:e]) {
					m.dst = append(m.dst, s[i:e]...) // a JSON key
				} else {
					m.wild()
				}
				i = e
				continue
			}
		case (c == '-' || c == '+') && opens && i+1 < n && isDigit(s[i+1]):
			if e := number(s, i+1); e > i+1 {
				m.wild()
				i = e
				continue
			}
		case c == ':' && i+1 < n && s[i+1] == ':':
			if e := ipv6(s, i); e > i {
				m.wild()
				i = e
				continue
			}
		}
		m.dst = append(m.dst, c)
		i++
	}
	return i
}

// quoteEnd returns the index just past the quote that closes the one at
// i, or 0 when none does.
func (m *masker) quoteEnd(i int) int {
	s := m.s
	q := s[i]
	k := 0
	if q == '\'' {
		k = 1
	}
	if m.noQuote[k] {
		return 0
	}
	for j := i + 1; j < len(s); j++ {
		d := strings.IndexByte(s[j:], q)
		if d < 0 {
			break
		}
		j += d
		bs := 0 // backslashes right before: an odd number escapes it
		for b := j - 1; b > i && s[b] == '\\'; b-- {
			bs++
		}
		if bs%2 == 1 {
			continue
		}
		if e := j + 1; e == len(s) || class[s[e]]&(cBlank|cClose) != 0 {
			return e
		}
	}
	m.noQuote[k] = true
	return 0
}

// nextAt returns the index of the first '@' at or after i, or -1.
func (m *masker) nextAt(i int) int {
	if m.at >= i || m.at == -1 {
		return m.at
	}
	if k := strings.IndexByte(m.s[i:], '@'); k >= 0 {
		m.at = i + k
	} else {
		m.at = -1
	}
	return m.at
}

func hasBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if isBlank(s[i]) {
			return true
		}
	}
	return false
}

// boundary says whether a variable may end at e: at the end, or before a
// byte that is not a letter or digit.
func boundary(s string, e int) bool { return e >= len(s) || !isWord(s[e]) }

// variable returns the end of the variable (other than a plain run, see
// runVaries) that starts at the run s[i:j], or i when none does; all is
// the classes every byte of the run has.
func (m *masker) variable(i, j int, all uint8) int {
	s := m.s
	n := len(s)
	hex := all&cHex != 0
	digits := all&cDigit != 0
	l := j - i
	var next byte
	if j < n {
		next = s[j]
	}
	if hex {
		if l == 8 && next == '-' {
			if e := uuid(s, i); e > 0 {
				return e
			}
		}
		if l == 2 && (next == ':' || next == '-') {
			if e := mac(s, i); e > 0 {
				return e
			}
		}
	}
	if digits {
		switch {
		case l == 4 && (next == '-' || next == '/'):
			if e := date(s, i); e > 0 {
				return e
			}
		case l <= 2 && next == '/':
			if e := logDate(s, i); e > 0 {
				return e
			}
		case l <= 2 && next == ':':
			if e := clock(s, i); e > 0 {
				return e
			}
		}
		if l <= 3 && next == '.' {
			if e := ipv4(s, i); e > 0 {
				return e
			}
		}
	}
	if hex && l <= 4 && next == ':' {
		if e := ipv6(s, i); e > i {
			return e
		}
	}
	if at := m.nextAt(i); at >= 0 && at-i <= 64 && at >= j {
		if e := email(s, i); e > 0 {
			return e
		}
	}
	if hex && l >= 8 && boundary(s, j) {
		return j
	}
	if l > 2 && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && boundary(s, j) {
		h := true
		for k := i + 2; k < j; k++ {
			h = h && isHex(s[k])
		}
		if h {
			return j
		}
	}
	if isDigit(s[i]) {
		if e := number(s, i); e > i {
			return e
		}
	}
	return i
}

// runVaries says whether a run of letters and digits that no other rule
// masks is an id: it starts with a digit, or holds two or more groups of
// digits or four or more digits.
func runVaries(r string) bool {
	if isDigit(r[0]) {
		return true
	}
	digits, groups := 0, 0
	for i := 0; i < len(r); i++ {
		if isDigit(r[i]) {
			digits++
			if i == 0 || !isDigit(r[i-1]) {
				groups++
			}
		}
	}
	return groups >= 2 || digits >= 4
}

// digitsAt returns the end of the run of at least lo and at most hi
// digits at i, or -1.
func digitsAt(s string, i, lo, hi int) int {
	j := i
	for j < len(s) && j-i < hi && isDigit(s[j]) {
		j++
	}
	if j-i < lo || (j < len(s) && isDigit(s[j])) {
		return -1
	}
	return j
}

// hexAt returns i+k when the k bytes at i are hex digits, else -1.
func hexAt(s string, i, k int) int {
	if i+k > len(s) {
		return -1
	}
	for j := i; j < i+k; j++ {
		if !isHex(s[j]) {
			return -1
		}
	}
	return i + k
}

// number returns the end of the number at i (digits, then . and digits
// any number of times) when a boundary or a unit of at most four letters
// follows it, else i.
func number(s string, i int) int {
	n := len(s)
	k := i
	for k < n && isDigit(s[k]) {
		k++
	}
	for k+1 < n && s[k] == '.' && isDigit(s[k+1]) {
		k += 2
		for k < n && isDigit(s[k]) {
			k++
		}
	}
	u := k
	for u < n && class[s[u]]&cAlpha != 0 {
		u++
	}
	if u-k > 4 || u < n && isDigit(s[u]) {
		return i
	}
	return k
}

// uuid: 8-4-4-4-12 hex digits.
func uuid(s string, i int) int {
	k := i
	for g, l := range [...]int{8, 4, 4, 4, 12} {
		if g > 0 {
			if k >= len(s) || s[k] != '-' {
				return 0
			}
			k++
		}
		if k = hexAt(s, k, l); k < 0 {
			return 0
		}
	}
	if !boundary(s, k) {
		return 0
	}
	return k
}

// mac: six pairs of hex digits joined by : or -.
func mac(s string, i int) int {
	sep := s[i+2]
	k := i
	for g := range 6 {
		if g > 0 {
			if k >= len(s) || s[k] != sep {
				return 0
			}
			k++
		}
		if k = hexAt(s, k, 2); k < 0 {
			return 0
		}
	}
	if !boundary(s, k) {
		return 0
	}
	return k
}

// date: YYYY-MM-DD or YYYY/MM/DD, optionally T and a clock after it.
func date(s string, i int) int {
	sep := s[i+4]
	k := i + 5
	if k = digitsAt(s, k, 2, 2); k < 0 || k >= len(s) || s[k] != sep {
		return 0
	}
	if k = digitsAt(s, k+1, 2, 2); k < 0 {
		return 0
	}
	if k+1 < len(s) && s[k] == 'T' && isDigit(s[k+1]) {
		if e := clock(s, k+1); e > 0 {
			return e
		}
	}
	if !boundary(s, k) {
		return 0
	}
	return k
}

// logDate: DD/Mon/YYYY (common log format), optionally :HH:MM:SS.
func logDate(s string, i int) int {
	k := digitsAt(s, i, 1, 2)
	if k < 0 || k+9 > len(s) || s[k] != '/' || !isMonth(s[k+1:k+4]) || s[k+4] != '/' {
		return 0
	}
	if k = digitsAt(s, k+5, 4, 4); k < 0 {
		return 0
	}
	if k < len(s) && s[k] == ':' {
		if e := clock(s, k+1); e > 0 {
			return e
		}
	}
	if !boundary(s, k) {
		return 0
	}
	return k
}

// clock: H:MM or HH:MM, optionally :SS and a fraction, then optionally a
// zone (Z, +HH, +HHMM, +HH:MM).
func clock(s string, i int) int {
	n := len(s)
	k := digitsAt(s, i, 1, 2)
	if k < 0 || k >= n || s[k] != ':' {
		return 0
	}
	if k = digitsAt(s, k+1, 2, 2); k < 0 {
		return 0
	}
	if k+2 < n && s[k] == ':' && isDigit(s[k+1]) {
		if e := digitsAt(s, k+1, 2, 2); e > 0 {
			k = e
			if k+1 < n && (s[k] == '.' || s[k] == ',') && isDigit(s[k+1]) {
				k++
				for k < n && isDigit(s[k]) {
					k++
				}
			}
		}
	}
	switch {
	case k < n && s[k] == 'Z':
		k++
	case k+2 < n && (s[k] == '+' || s[k] == '-') && isDigit(s[k+1]):
		if e := digitsAt(s, k+1, 2, 4); e > 0 && (e-k-1 == 2 || e-k-1 == 4) {
			k = e
			if k+2 < n && s[k] == ':' {
				if e := digitsAt(s, k+1, 2, 2); e > 0 {
					k = e
				}
			}
		}
	}
	if !boundary(s, k) {
		return 0
	}
	return k
}

// ipv4: four numbers of up to three digits joined by dots, optionally
// :port and /prefix; not followed by another .digit (a version).
func ipv4(s string, i int) int {
	k := i
	for g := range 4 {
		if g > 0 {
			if k >= len(s) || s[k] != '.' {
				return 0
			}
			k++
		}
		if k = digitsAt(s, k, 1, 3); k < 0 {
			return 0
		}
	}
	if k+1 < len(s) && s[k] == '.' && isDigit(s[k+1]) {
		return 0
	}
	if k+1 < len(s) && s[k] == ':' && isDigit(s[k+1]) {
		if e := digitsAt(s, k+1, 1, 5); e > 0 {
			k = e
		}
	}
	if k+1 < len(s) && s[k] == '/' && isDigit(s[k+1]) {
		if e := digitsAt(s, k+1, 1, 2); e > 0 {
			k = e
		}
	}
	if !boundary(s, k) {
		return 0
	}
	return k
}

// ipv6 returns the end of the IPv6 address at i (groups of up to four
// hex digits joined by colons: eight groups, or fewer with one :: and a
// digit somewhere, so that a::b stays a word), or i.
func ipv6(s string, i int) int {
	n := len(s)
	k := i
	groups, double, digit := 0, false, false
	for k < n {
		if s[k] == ':' {
			if k+1 < n && s[k+1] == ':' {
				if double {
					break
				}
				double = true
				k += 2
				continue
			}
			if k+1 >= n || !isHex(s[k+1]) {
				break // a colon that ends the address belongs to what follows
			}
			k++
			continue
		}
		e := k
		for e < n && e-k < 5 && isHex(s[e]) {
			digit = digit || isDigit(s[e])
			e++
		}
		if e == k {
			break
		}
		if e-k > 4 {
			return i
		}
		groups++
		k = e
		if k < n && s[k] != ':' {
			break
		}
	}
	if groups > 8 || !double && groups != 8 || double && !digit {
		return i
	}
	if !boundary(s, k) {
		return i
	}
	return k
}

// email: local@domain.tld.
func email(s string, i int) int {
	n := len(s)
	k := i
	for k < n && (isWord(s[k]) && s[k] < 0x80 || s[k] == '.' || s[k] == '%' || s[k] == '+' || s[k] == '-') {
		k++
	}
	if k == i || k >= n || s[k] != '@' {
		return 0
	}
	k++
	labels := 0
	lastAlpha := false
	for {
		e := k
		alpha := true
		for e < n && (isWord(s[e]) && s[e] < 0x80 && s[e] != '_' || s[e] == '-') {
			alpha = alpha && class[s[e]]&cAlpha != 0
			e++
		}
		if e == k {
			return 0
		}
		labels++
		k, lastAlpha = e, alpha && e-k >= 2
		if k+1 < n && s[k] == '.' && isWord(s[k+1]) {
			k++
			continue
		}
		break
	}
	if labels < 2 || !lastAlpha || !boundary(s, k) {
		return 0
	}
	return k
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func isMonth(w string) bool {
	for _, m := range months {
		if w == m {
			return true
		}
	}
	return false
}

func isWeekday(w string) bool {
	switch w {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

// nextWord returns the word after the blanks at i.
func nextWord(s string, i int) string {
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isBlank(s[j]) {
		j++
	}
	return s[i:j]
}

// dayNext says whether the next word is a day of the month (1 or 2
// digits, perhaps followed by a comma).
func dayNext(s string, i int) bool {
	w := nextWord(s, i)
	w = trimSuffixByte(w, ',')
	return len(w) >= 1 && len(w) <= 2 && isDigit(w[0]) && isDigit(w[len(w)-1])
}

// monthNext says whether the next word is a month name.
func monthNext(s string, i int) bool { return isMonth(nextWord(s, i)) }

func trimSuffixByte(s string, c byte) string {
	if len(s) > 0 && s[len(s)-1] == c {
		return s[:len(s)-1]
	}
	return s
}
