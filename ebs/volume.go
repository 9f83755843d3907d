package ebs

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Volume states (types.VolumeState) and attachment states (types.VolumeAttachmentState), as
// plain strings for comparisons and output.
const (
	StateCreating  = "creating"
	StateAvailable = "available"
	StateInUse     = "in-use"
	StateDeleting  = "deleting"
	StateDeleted   = "deleted"
	StateError     = "error"

	AttachmentAttaching = "attaching"
	AttachmentAttached  = "attached"
	AttachmentDetaching = "detaching"
	AttachmentDetached  = "detached"
	AttachmentBusy      = "busy"
)

// Volume is the package's view of an EBS volume.
type Volume struct {
	ID               string            `json:"volumeId"`
	SizeGiB          int32             `json:"size"`
	AvailabilityZone string            `json:"availabilityZone"`
	State            string            `json:"state"`
	Type             string            `json:"volumeType,omitempty"`
	IOPS             int32             `json:"iops,omitempty"`
	Throughput       int32             `json:"throughput,omitempty"`
	SnapshotID       string            `json:"snapshotId,omitempty"`
	Encrypted        bool              `json:"encrypted"`
	CreateTime       time.Time         `json:"createTime"`
	Tags             map[string]string `json:"tags,omitempty"`
	Attachments      []Attachment      `json:"attachments,omitempty"`
}

// Attachment is one attachment of a volume to an instance.
type Attachment struct {
	VolumeID            string    `json:"volumeId"`
	InstanceID          string    `json:"instanceId"`
	Device              string    `json:"device"`
	State               string    `json:"state"`
	AttachTime          time.Time `json:"attachTime"`
	DeleteOnTermination bool      `json:"deleteOnTermination"`
}

func fromSDK(v types.Volume) Volume {
	out := Volume{
		ID:               aws.ToString(v.VolumeId),
		SizeGiB:          aws.ToInt32(v.Size),
		AvailabilityZone: aws.ToString(v.AvailabilityZone),
		State:            string(v.State),
		Type:             string(v.VolumeType),
		IOPS:             aws.ToInt32(v.Iops),
		Throughput:       aws.ToInt32(v.Throughput),
		SnapshotID:       aws.ToString(v.SnapshotId),
		Encrypted:        aws.ToBool(v.Encrypted),
		CreateTime:       aws.ToTime(v.CreateTime),
	}
	if len(v.Tags) > 0 {
		out.Tags = make(map[string]string, len(v.Tags))
		for _, t := range v.Tags {
			out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	for _, a := range v.Attachments {
		out.Attachments = append(out.Attachments, Attachment{
			VolumeID:            aws.ToString(a.VolumeId),
			InstanceID:          aws.ToString(a.InstanceId),
			Device:              aws.ToString(a.Device),
			State:               string(a.State),
			AttachTime:          aws.ToTime(a.AttachTime),
			DeleteOnTermination: aws.ToBool(a.DeleteOnTermination),
		})
	}
	return out
}

// attachmentFor returns the volume's attachment to instance, or nil.
func (v *Volume) attachmentFor(instance string) *Attachment {
	for i := range v.Attachments {
		if v.Attachments[i].InstanceID == instance {
			return &v.Attachments[i]
		}
	}
	return nil
}

// activeAttachments are the attachments that are not yet "detached".
func (v *Volume) activeAttachments() []Attachment {
	var out []Attachment
	for _, a := range v.Attachments {
		if a.State != AttachmentDetached {
			out = append(out, a)
		}
	}
	return out
}

// describe returns one volume; an unknown ID is an error wrapping ErrNotFound. opts are
// per-call SDK options (c.retries, to report the SDK's retries about the operation's
// objects); without them retries are reported as Op "describe".
func (c *Client) describe(ctx context.Context, id string, opts ...func(*ec2.Options)) (*Volume, error) {
	if len(opts) == 0 {
		opts = append(opts, c.retries(Event{Op: "describe", VolumeID: id}, "DescribeVolumes"))
	}
	out, err := c.api.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, opts...)
	if err != nil {
		return nil, classify(err)
	}
	for _, v := range out.Volumes {
		if aws.ToString(v.VolumeId) == id {
			vol := fromSDK(v)
			return &vol, nil
		}
	}
	return nil, ErrNotFound
}

// Describe returns the current state of one volume.
func (c *Client) Describe(ctx context.Context, volumeID string) (*Volume, error) {
	v, err := c.describe(ctx, volumeID)
	if err != nil {
		return nil, &Error{Op: "describe", VolumeID: volumeID, Err: err}
	}
	return v, nil
}

// ListOptions select volumes. All given criteria must match.
type ListOptions struct {
	// Tags: key → value; an empty value matches any value of the key.
	Tags       map[string]string
	InstanceID string   // attached to this instance
	VolumeIDs  []string // among these IDs
}

// List returns the matching volumes, sorted by creation time then ID.
func (c *Client) List(ctx context.Context, lo ListOptions) ([]Volume, error) {
	in := &ec2.DescribeVolumesInput{VolumeIds: lo.VolumeIDs}
	keys := make([]string, 0, len(lo.Tags))
	for k := range lo.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := lo.Tags[k]; v != "" {
			in.Filters = append(in.Filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{v}})
		} else {
			in.Filters = append(in.Filters, types.Filter{Name: aws.String("tag-key"), Values: []string{k}})
		}
	}
	if lo.InstanceID != "" {
		in.Filters = append(in.Filters, types.Filter{Name: aws.String("attachment.instance-id"), Values: []string{lo.InstanceID}})
	}
	var vols []Volume
	p := ec2.NewDescribeVolumesPaginator(c.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, &Error{Op: "list", Err: classify(err)}
		}
		for _, v := range page.Volumes {
			vol := fromSDK(v)
			if matchTags(vol.Tags, lo.Tags) { // emulators differ in filter support
				vols = append(vols, vol)
			}
		}
	}
	sort.Slice(vols, func(i, j int) bool {
		if !vols[i].CreateTime.Equal(vols[j].CreateTime) {
			return vols[i].CreateTime.Before(vols[j].CreateTime)
		}
		return vols[i].ID < vols[j].ID
	})
	return vols, nil
}

func matchTags(have, want map[string]string) bool {
	for k, v := range want {
		hv, ok := have[k]
		if !ok || (v != "" && hv != v) {
			return false
		}
	}
	return true
}

// Find returns the one volume carrying all tags (deleted volumes ignored): ErrNotFound when
// none does, ErrAmbiguous when several do.
func (c *Client) Find(ctx context.Context, tags map[string]string) (*Volume, error) {
	vols, err := c.List(ctx, ListOptions{Tags: tags})
	if err != nil {
		return nil, err
	}
	var live []Volume
	for _, v := range vols {
		if v.State != StateDeleting && v.State != StateDeleted {
			live = append(live, v)
		}
	}
	switch len(live) {
	case 0:
		return nil, &Error{Op: "find", Err: fmt.Errorf("tags %v: %w", tags, ErrNotFound)}
	case 1:
		return &live[0], nil
	}
	ids := make([]string, len(live))
	for i, v := range live {
		ids[i] = v.ID
	}
	return nil, &Error{Op: "find", Err: fmt.Errorf("tags %v: %w: %v", tags, ErrAmbiguous, ids)}
}

// FindByName returns the volume Create made for name (found by its creation-token tag).
func (c *Client) FindByName(ctx context.Context, name string) (*Volume, error) {
	return c.Find(ctx, map[string]string{TokenTagKey: ClientToken(name)})
}
