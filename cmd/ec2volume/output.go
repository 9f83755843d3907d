package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cloudluks/cloudluks/ebs"
)

// timeLayout is the EC2 API tools' timestamp ("2011-11-26T20:08:15+0000").
const timeLayout = "2006-01-02T15:04:05-0700"

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func line(w io.Writer, fields ...string) {
	fmt.Fprintln(w, strings.Join(fields, "\t"))
}

// volumeLine: VOLUME id size snapshot zone state created type — the ec2-describe-volumes
// columns (the snapshot column is empty for a volume made from scratch).
func volumeLine(w io.Writer, v *ebs.Volume) {
	line(w, "VOLUME", v.ID, fmt.Sprint(v.SizeGiB), v.SnapshotID, v.AvailabilityZone, v.State, stamp(v.CreateTime), v.Type)
}

// attachmentLine: ATTACHMENT volume instance device state time.
func attachmentLine(w io.Writer, a *ebs.Attachment) {
	line(w, "ATTACHMENT", a.VolumeID, a.InstanceID, a.Device, a.State, stamp(a.AttachTime))
}

// tagLines: TAG volume id key value, sorted by key.
func tagLines(w io.Writer, v *ebs.Volume) {
	keys := make([]string, 0, len(v.Tags))
	for k := range v.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		line(w, "TAG", "volume", v.ID, k, v.Tags[k])
	}
}

func (g *globals) json(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
