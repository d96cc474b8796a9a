package pipeline

import (
	"reflect"
	"testing"
)

func TestCoverage(t *testing.T) {
	c := Coverage{}
	c.Add("t/0", 10, 20)
	c.Add("t/0", 30, 40)
	c.Add("t/0", 0, 5)
	c.Add("t/0", 20, 25) // touches [10,20)
	c.Add("t/0", 7, 7)   // empty
	if want := []OffsetRange{{0, 5}, {10, 25}, {30, 40}}; !reflect.DeepEqual(c["t/0"], want) {
		t.Fatalf("ranges %v, want %v", c["t/0"], want)
	}
	if got, want := c.Missing("t/0", 0, 50), []OffsetRange{{5, 10}, {25, 30}, {40, 50}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("missing %v, want %v", got, want)
	}
	if got := c.Missing("t/0", 12, 22); got != nil {
		t.Fatalf("missing inside a range: %v", got)
	}
	if got, want := c.Missing("t/1", 3, 9), []OffsetRange{{3, 9}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("missing of an unknown partition %v, want %v", got, want)
	}
	c.Add("t/0", 4, 31)
	if want := []OffsetRange{{0, 40}}; !reflect.DeepEqual(c["t/0"], want) {
		t.Fatalf("after a bridging add %v, want %v", c["t/0"], want)
	}
	d := c.Clone()
	d.Add("t/0", 40, 45)
	if c["t/0"][0][1] != 40 {
		t.Fatal("Clone shares ranges")
	}
	if PartName("logs", 3) != "logs/3" {
		t.Fatal(PartName("logs", 3))
	}
}
