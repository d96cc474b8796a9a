package main

import (
	"os"
	"strings"
	"time"
	_ "time/tzdata" // zone names work on boxes without /usr/share/zoneinfo
)

// localZoneName is the IANA name of the zone time.Local is (Go reads
// $TZ, else /etc/localtime): $TZ when set (":" stripped; set but empty
// means UTC), else the zoneinfo path /etc/localtime links to. "" when
// neither names a zone Go can load: the tailer then stamps the UTC
// offset at read time.
func localZoneName(tz string, hasTZ bool, localtime string) string {
	if hasTZ {
		tz = strings.TrimPrefix(tz, ":")
		if tz == "" {
			return "UTC"
		}
		if _, err := time.LoadLocation(tz); err == nil && !strings.HasPrefix(tz, "/") {
			return tz
		}
		return ""
	}
	target, err := os.Readlink(localtime)
	if err != nil {
		return ""
	}
	_, name, ok := strings.Cut(target, "zoneinfo/")
	if !ok {
		return ""
	}
	name = strings.TrimPrefix(strings.TrimPrefix(name, "posix/"), "right/")
	if _, err := time.LoadLocation(name); err != nil {
		return ""
	}
	return name
}
