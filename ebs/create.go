package ebs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TokenTagKey is the tag Create puts on every volume it makes, holding the ClientToken. It
// lets a retried or restarted Create find the volume an earlier attempt made even where the
// EC2 endpoint does not honour ClientToken (moto, for one), and lets FindByName work.
const TokenTagKey = "cloudluks:create-token"

// NameTagKey is the tag the AWS console and CLI show as a volume's name; Create sets it to
// CreateOptions.Name unless Tags sets it explicitly.
const NameTagKey = "Name"

// DefaultVolumeType is used when CreateOptions.Type is empty: gp3 is the current general
// purpose type (cheaper than gp2 at the same baseline, IOPS and throughput set separately).
const DefaultVolumeType = "gp3"

// CreateOptions describe a new volume.
type CreateOptions struct {
	// Name makes the create idempotent: the same name always yields the same volume (its
	// token, see ClientToken, goes to EC2 as ClientToken and onto the volume as a tag). It
	// is also set as the Name tag (NameTagKey) in the same request, so the volume is
	// never visible without it. Empty: a random token, so only the retries inside this one
	// call are idempotent.
	Name string
	// SizeGiB may be 0 with SnapshotID (the snapshot's size).
	SizeGiB int32
	// AvailabilityZone defaults to the instance's (Options.Metadata).
	AvailabilityZone string
	// Type: gp2, gp3, io1, io2, st1, sc1 or standard; "" = DefaultVolumeType.
	Type string
	// IOPS for gp3 (optional), io1 and io2 (required); 0 = not set.
	IOPS int32
	// Throughput in MiB/s, gp3 only; 0 = not set.
	Throughput int32
	SnapshotID string
	Tags       map[string]string
	// Encrypted asks EBS to encrypt the volume with a KMS key. Off by default: this
	// project encrypts inside the instance with keys that never reach AWS, and EBS
	// encryption would add a second layer whose keys live in the cloud. Turn it on only when
	// a policy demands it (the LUKS layer is unaffected).
	Encrypted bool
	// KMSKeyID selects the KMS key for Encrypted (requires Encrypted).
	KMSKeyID string
}

// volumeLimits are the EC2 limits per type (CreateVolume API reference, 2026).
type volumeLimits struct {
	minSize, maxSize     int32
	iops                 bool // accepts Iops
	iopsRequired         bool
	minIOPS, maxIOPS     int32
	iopsPerGiB           int32 // max ratio; 0 = none
	throughput           bool
	minThrough, maxThrou int32
}

var limits = map[string]volumeLimits{
	"gp2":      {minSize: 1, maxSize: 16384},
	"gp3":      {minSize: 1, maxSize: 65536, iops: true, minIOPS: 3000, maxIOPS: 80000, iopsPerGiB: 500, throughput: true, minThrough: 125, maxThrou: 2000},
	"io1":      {minSize: 4, maxSize: 16384, iops: true, iopsRequired: true, minIOPS: 100, maxIOPS: 64000, iopsPerGiB: 50},
	"io2":      {minSize: 4, maxSize: 65536, iops: true, iopsRequired: true, minIOPS: 100, maxIOPS: 256000, iopsPerGiB: 1000},
	"st1":      {minSize: 125, maxSize: 16384},
	"sc1":      {minSize: 125, maxSize: 16384},
	"standard": {minSize: 1, maxSize: 1024},
}

// VolumeTypes lists the volume types Create accepts.
func VolumeTypes() []string {
	out := make([]string, 0, len(limits))
	for k := range limits {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Validate checks o against the EC2 limits for its type, so that a mistake is reported
// before anything is created.
func (o CreateOptions) Validate() error {
	typ := o.Type
	if typ == "" {
		typ = DefaultVolumeType
	}
	lim, ok := limits[typ]
	if !ok {
		return fmt.Errorf("%w: volume type %q (want one of %s)", ErrInvalidParameter, o.Type, strings.Join(VolumeTypes(), ", "))
	}
	switch {
	case o.SizeGiB < 0:
		return fmt.Errorf("%w: size %d GiB", ErrInvalidParameter, o.SizeGiB)
	case o.SizeGiB == 0 && o.SnapshotID == "":
		return fmt.Errorf("%w: a size or a snapshot is required", ErrInvalidParameter)
	case o.SizeGiB != 0 && (o.SizeGiB < lim.minSize || o.SizeGiB > lim.maxSize):
		return fmt.Errorf("%w: size %d GiB out of range for %s (%d–%d GiB)", ErrInvalidParameter, o.SizeGiB, typ, lim.minSize, lim.maxSize)
	case o.IOPS < 0 || o.Throughput < 0:
		return fmt.Errorf("%w: negative IOPS or throughput", ErrInvalidParameter)
	case o.IOPS != 0 && !lim.iops:
		return fmt.Errorf("%w: volume type %s takes no IOPS setting (only gp3, io1, io2)", ErrInvalidParameter, typ)
	case o.IOPS == 0 && lim.iopsRequired:
		return fmt.Errorf("%w: volume type %s requires IOPS", ErrInvalidParameter, typ)
	case o.IOPS != 0 && (o.IOPS < lim.minIOPS || o.IOPS > lim.maxIOPS):
		return fmt.Errorf("%w: %d IOPS out of range for %s (%d–%d)", ErrInvalidParameter, o.IOPS, typ, lim.minIOPS, lim.maxIOPS)
	case o.IOPS > lim.minIOPS && o.SizeGiB != 0 && int64(o.IOPS) > int64(lim.iopsPerGiB)*int64(o.SizeGiB):
		return fmt.Errorf("%w: %d IOPS exceed %d IOPS per GiB for a %d GiB %s volume", ErrInvalidParameter, o.IOPS, lim.iopsPerGiB, o.SizeGiB, typ)
	case o.Throughput != 0 && !lim.throughput:
		return fmt.Errorf("%w: volume type %s takes no throughput setting (only gp3)", ErrInvalidParameter, typ)
	case o.Throughput != 0 && (o.Throughput < lim.minThrough || o.Throughput > lim.maxThrou):
		return fmt.Errorf("%w: throughput %d MiB/s out of range for %s (%d–%d)", ErrInvalidParameter, o.Throughput, typ, lim.minThrough, lim.maxThrou)
	case o.Throughput != 0 && int64(o.Throughput)*4 > int64(max(o.IOPS, lim.minIOPS)):
		return fmt.Errorf("%w: throughput %d MiB/s exceeds 0.25 MiB/s per IOPS (%d IOPS)", ErrInvalidParameter, o.Throughput, max(o.IOPS, lim.minIOPS))
	case o.KMSKeyID != "" && !o.Encrypted:
		return fmt.Errorf("%w: a KMS key needs Encrypted", ErrInvalidParameter)
	}
	if _, ok := o.Tags[NameTagKey]; !ok && utf8.RuneCountInString(o.Name) > 256 {
		return fmt.Errorf("%w: name %q is longer than the 256 characters of a Name tag", ErrInvalidParameter, o.Name)
	}
	for k := range o.Tags {
		if k == "" || strings.HasPrefix(strings.ToLower(k), "aws:") || k == TokenTagKey {
			return fmt.Errorf("%w: tag key %q is empty or reserved", ErrInvalidParameter, k)
		}
	}
	return nil
}

// ClientToken returns the CreateVolume ClientToken for a creation name: hex SHA-256 of the
// name, 64 characters (the maximum EC2 accepts), as the EBS CSI driver does. Any name maps
// to a valid token, and the same name to the same token in every process.
func ClientToken(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

func randomToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// noSDKRetry turns the SDK retryer off for one call: Create decides itself when to resend,
// so that it can look for the volume a lost answer may have created before sending again.
func noSDKRetry(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }

// Create makes a volume and returns it as EC2 reported it (normally "creating"; call
// WaitAvailable next). With a Name, a volume made earlier for the same name is returned
// instead of a new one. A lost answer (dropped connection, throttling, 5xx) is handled by
// looking for the volume by its token tag and, if it is not there, sending the same request
// with the same ClientToken again, so one call never makes two volumes.
func (c *Client) Create(ctx context.Context, o CreateOptions) (*Volume, error) {
	if err := o.Validate(); err != nil {
		return nil, &Error{Op: "create", Err: err}
	}
	if o.AvailabilityZone == "" {
		inst, err := c.Instance(ctx)
		if err != nil {
			return nil, &Error{Op: "create", Err: fmt.Errorf("%w: no availability zone given and %w", ErrInvalidParameter, err)}
		}
		o.AvailabilityZone = inst.AvailabilityZone
	}
	if o.Type == "" {
		o.Type = DefaultVolumeType
	}
	token := ClientToken(o.Name)
	if o.Name == "" {
		t, err := randomToken()
		if err != nil {
			return nil, &Error{Op: "create", Err: err}
		}
		token = t
	} else if v, err := c.findByToken(ctx, token); err != nil {
		return nil, &Error{Op: "create", Err: err}
	} else if v != nil {
		if (o.SizeGiB != 0 && v.SizeGiB != o.SizeGiB) || v.AvailabilityZone != o.AvailabilityZone || (v.Type != "" && v.Type != o.Type) {
			return nil, &Error{Op: "create", VolumeID: v.ID, State: v.State, Err: fmt.Errorf("%w: name %q belongs to a %d GiB %s volume in %s",
				ErrNameConflict, o.Name, v.SizeGiB, v.Type, v.AvailabilityZone)}
		}
		c.progress(Event{Op: "create", VolumeID: v.ID, State: v.State, Message: fmt.Sprintf("volume for name %q exists", o.Name)})
		return v, nil
	}

	in := createInput(o, token)
	bo := c.opts.Wait.backoff()
	var lastErr error
	for attempt := 1; attempt <= c.opts.Wait.CreateAttempts; attempt++ {
		out, err := c.api.CreateVolume(ctx, in, noSDKRetry)
		if err == nil {
			v := fromSDK(types.Volume{
				VolumeId: out.VolumeId, Size: out.Size, AvailabilityZone: out.AvailabilityZone,
				State: out.State, VolumeType: out.VolumeType, Iops: out.Iops, Throughput: out.Throughput,
				SnapshotId: out.SnapshotId, Encrypted: out.Encrypted, CreateTime: out.CreateTime,
				Tags: out.Tags,
			})
			if v.Tags == nil { // some endpoints echo no tags
				v.Tags = map[string]string{TokenTagKey: token}
				for k, val := range createTags(o) {
					v.Tags[k] = val
				}
			}
			c.progress(Event{Op: "create", VolumeID: v.ID, State: v.State, Message: "created"})
			return &v, nil
		}
		if !transient(err) {
			return nil, &Error{Op: "create", Err: classify(err)}
		}
		lastErr = err
		c.progress(Event{Op: "create", Warning: true, Message: fmt.Sprintf("attempt %d: %v; looking for the volume before sending again", attempt, err)})
		if err := sleep(ctx, bo.delay()); err != nil {
			return nil, &Error{Op: "create", Err: err}
		}
		// The request may have reached EC2 even though the answer did not reach us.
		v, ferr := c.findByToken(ctx, token)
		if ferr == nil && v != nil {
			c.progress(Event{Op: "create", VolumeID: v.ID, State: v.State, Message: "found the volume the lost answer created"})
			return v, nil
		}
	}
	return nil, &Error{Op: "create", Err: fmt.Errorf("%d attempts: %w", c.opts.Wait.CreateAttempts, classify(lastErr))}
}

func createInput(o CreateOptions, token string) *ec2.CreateVolumeInput {
	in := &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String(o.AvailabilityZone),
		ClientToken:      aws.String(token),
		VolumeType:       types.VolumeType(o.Type),
	}
	if o.SizeGiB != 0 {
		in.Size = aws.Int32(o.SizeGiB)
	}
	if o.IOPS != 0 {
		in.Iops = aws.Int32(o.IOPS)
	}
	if o.Throughput != 0 {
		in.Throughput = aws.Int32(o.Throughput)
	}
	if o.SnapshotID != "" {
		in.SnapshotId = aws.String(o.SnapshotID)
	}
	if o.Encrypted {
		in.Encrypted = aws.Bool(true)
	}
	if o.KMSKeyID != "" {
		in.KmsKeyId = aws.String(o.KMSKeyID)
	}
	tags := []types.Tag{{Key: aws.String(TokenTagKey), Value: aws.String(token)}}
	extra := createTags(o)
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(extra[k])})
	}
	in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: tags}}
	return in
}

// findByToken returns the live volume tagged with token, nil when there is none.
func (c *Client) findByToken(ctx context.Context, token string) (*Volume, error) {
	vols, err := c.List(ctx, ListOptions{Tags: map[string]string{TokenTagKey: token}})
	if err != nil {
		return nil, err
	}
	for i := range vols {
		switch vols[i].State {
		case StateDeleting, StateDeleted, StateError:
			continue
		}
		return &vols[i], nil
	}
	return nil, nil
}

// WaitAvailable waits until the volume is "available" (or already "in-use"), for at most
// Wait.AvailableTimeout (then ErrTimeout). It rides out InvalidVolume.NotFound for
// Wait.NotFoundGrace after the call starts (the SDK's VolumeAvailable waiter fails on the
// first NotFound), throttling and dropped connections until the timeout, and server errors
// for Wait.ServerErrorBudget (then ErrServer). A volume that turns "error" or "deleted"
// fails with ErrVolumeFailed.
func (c *Client) WaitAvailable(ctx context.Context, volumeID string) (*Volume, error) {
	var vol *Volume
	last := ""
	srv := c.serverErrors()
	ev := Event{Op: "wait-available", VolumeID: volumeID}
	err := c.poll(ctx, c.opts.Wait.AvailableTimeout, func(elapsed time.Duration) (bool, error) {
		v, err := c.describe(ctx, volumeID, c.retries(ev, "DescribeVolumes"))
		if serr := srv.note(err); serr != nil {
			return false, serr
		}
		switch {
		case errors.Is(err, ErrNotFound) && elapsed < c.opts.Wait.NotFoundGrace:
			c.stateEvent("wait-available", volumeID, "", "", &last, "not-yet-visible")
			return false, nil
		case transient(err):
			c.progress(Event{Op: "wait-available", VolumeID: volumeID, Warning: true, Message: err.Error()})
			return false, nil
		case err != nil:
			return false, err
		}
		vol = v
		c.stateEvent("wait-available", volumeID, "", "", &last, v.State)
		switch v.State {
		case StateAvailable, StateInUse:
			return true, nil
		case StateError, StateDeleting, StateDeleted:
			return false, ErrVolumeFailed
		}
		return false, nil
	})
	if err != nil {
		if errors.Is(err, errWaitTimeout) {
			err = fmt.Errorf("%w after %v", ErrTimeout, c.opts.Wait.AvailableTimeout)
		}
		return nil, &Error{Op: "wait-available", VolumeID: volumeID, State: last, Err: err}
	}
	return vol, nil
}

// stateEvent reports a state change (only when it differs from *last).
func (c *Client) stateEvent(op, vol, inst, dev string, last *string, state string) {
	if *last == state {
		return
	}
	*last = state
	c.progress(Event{Op: op, VolumeID: vol, InstanceID: inst, Device: dev, State: state})
}

// createTags are the tags Create puts on the volume besides the token: o.Tags, plus the Name
// tag from o.Name when o.Tags does not set one (an explicit tag is what the caller asked for).
func createTags(o CreateOptions) map[string]string {
	tags := make(map[string]string, len(o.Tags)+1)
	for k, v := range o.Tags {
		tags[k] = v
	}
	if _, ok := tags[NameTagKey]; !ok && o.Name != "" {
		tags[NameTagKey] = o.Name
	}
	return tags
}
