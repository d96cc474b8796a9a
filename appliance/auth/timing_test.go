package auth

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestBasicAuthTimingHidesUsers: a wrong password for a known user and any
// password for an unknown user take the same time, so response times do
// not tell which user names exist. Medians of interleaved requests are
// compared; a run disturbed by load is measured again (at most 3 runs),
// while a real difference (the unknown user's dummy hash at another cost
// than the users') shows in every run.
func TestBasicAuthTimingHidesUsers(t *testing.T) {
	const cost = 6 // ~5 ms per check; the old dummy hash had cost 10 (~16× slower)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), cost)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{HtpasswdFile: writeFile(t, "htpasswd", "alice:"+string(hash)+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	timeOne := func(user string) time.Duration {
		req := httptest.NewRequest("GET", "http://127.0.0.1:7070/api/search", nil)
		req.SetBasicAuth(user, "wrong-password")
		rec := httptest.NewRecorder()
		began := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(began)
		if rec.Code != 401 {
			t.Fatalf("user %q with a wrong password: %d, want 401", user, rec.Code)
		}
		return d
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	const n, bound = 15, 3.0
	var ratio float64
	for run := 1; run <= 3; run++ {
		var known, unknown []time.Duration
		for range n { // interleaved, so both see the same load
			known = append(known, timeOne("alice"))
			unknown = append(unknown, timeOne("mallory"))
		}
		mk, mu := median(known), median(unknown)
		ratio = float64(max(mk, mu)) / float64(min(mk, mu))
		t.Logf("run %d: median known user %v, unknown user %v, ratio %.2f", run, mk, mu, ratio)
		if ratio <= bound {
			return
		}
	}
	t.Fatalf("known and unknown users answer at different speeds (ratio %.2f > %.1f in 3 runs): response time tells which users exist", ratio, bound)
}
