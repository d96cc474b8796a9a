package pipeline

import (
	"strings"
	"testing"
)

// TestValidateDoubleStar: ** is accepted as a whole path element (any
// depth, as the tailer expands it) and refused inside one.
func TestValidateDoubleStar(t *testing.T) {
	for glob, ok := range map[string]bool{
		"/var/log/**/*.log":     true,
		"/var/log/**":           true,
		"/var/log/a/**/b/*.log": true,
		"/var/log/a**/x.log":    false,
		"/var/log/**x/*.log":    false,
		"/var/log/**/../x.log":  false,
	} {
		s := Source{Name: "s", Paths: []string{glob}}
		err := s.Validate(nil)
		if (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", glob, err, ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "paths[0]: ") {
			t.Errorf("error %q does not name the field", err)
		}
	}
}
