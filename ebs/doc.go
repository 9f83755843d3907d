// Package ebs runs the life cycle of an Amazon EBS volume from the instance that uses it:
// create, wait until available, attach at a free device name, find the local block device,
// detach, delete. It is steps 1 and 2 of the encrypted-volume walkthrough
// (ec2-create-volume, ec2-attach-volume) and the detach before a volume moves to another
// instance, done the way production EBS automation has learnt to do them. It knows nothing
// about encryption and imports no crypto package of this project.
//
// # Configuration
//
// The package talks to EC2 through aws-sdk-go-v2 over a narrow interface (EC2API, satisfied
// by *ec2.Client). NewFromConfig takes an aws.Config from config.LoadDefaultConfig, so
// profiles, AWS_REGION, the credential chain, AWS_ENDPOINT_URL_EC2 and
// AWS_EC2_METADATA_SERVICE_ENDPOINT work as in any SDK program; LoadDefaultConfig here adds
// a region taken from instance metadata when none is configured, and keeps the SDK's own
// logger off stderr: what the SDK logs (chiefly the IMDS client's "falling back to IMDSv1"
// when the metadata service refuses a session token) becomes an Event with Op "metadata",
// delivered to Options.Progress by NewFromConfig, or to the callback given with WithProgress.
// The instance context
// (instance ID, availability zone, region: InstanceFromMetadata) comes from IMDSv2 and
// supplies the defaults for Create and Attach.
//
// # Create
//
// CreateOptions.Validate checks type, size, IOPS and throughput against the EC2 limits of
// each type (gp2, gp3, io1, io2, st1, sc1, standard) before anything is sent. A creation
// name becomes the ClientToken (hex SHA-256, as the EBS CSI driver does) and a tag
// (TokenTagKey): the same name always yields the same volume, and when an answer is lost
// Create looks for the volume by its tag before it sends the request again, so a retry never
// creates a second volume. The name itself also goes on as the Name tag (NameTagKey), in
// the same request, since that is what the console and the AWS CLI show. EBS-side encryption (Encrypted, KMSKeyID) is available but off by
// default: the point of this project is that volume keys never live in the cloud, and EBS
// encryption keys are KMS keys.
//
// WaitAvailable polls until the volume is available, tolerating InvalidVolume.NotFound for a
// while after create (EC2 is eventually consistent; the SDK's waiter fails on the first
// NotFound).
//
// # Attach and detach
//
// Attach picks the first of /dev/sdf…/dev/sdp that neither the instance's block-device
// mappings (DescribeInstances; IMDS knows only launch-time devices) nor this Client's
// attachments in flight use, moves to the next name when EC2 answers "already in use", and
// waits for the attachment to this instance — not just the volume — to be "attached". An
// attachment stuck in "attaching" past Wait.AttachingTimeout is detached again and reported
// with ErrAttachTimeout. Detach waits for "detached"; a volume that is not attached is
// success; Force is used only when asked and announced as a warning. Delete refuses an
// attached volume (ErrInUse) unless asked to detach first, and waits until the volume is gone.
//
// # Local device
//
// ResolveDevice maps an attached volume to its block device: on Nitro instances the NVMe
// namespace whose controller serial is the volume ID without its dash (sysfs), cross-checked
// with the requested name EBS writes into the controller's vendor area (NVMe Identify
// Controller, bytes 3072–3103, read with the NVMe admin ioctl); on Xen instances /dev/sdX →
// /dev/xvdX, or four letters later on RHEL 6 kernels. It waits for the node to appear and
// refuses a path that leads to another volume's disk.
//
// # Waiting, retries, errors
//
// Every call takes a context. The wait loops are the package's own (EC2 has no attachment
// waiter) with named default policies (DefaultAvailableTimeout, DefaultAttachingTimeout, …)
// that WaitOptions override. Throttling (RequestLimitExceeded), 5xx answers and dropped
// connections are retried by the SDK retryer (NewRetryer), and each retry is reported as a
// warning Event ("retrying DetachVolume: InternalError (attempt 2 of 8)"). Inside wait loops
// throttling, EC2's 503 overload answer (Unavailable) and dropped connections are ridden out
// until the timeout; other server errors are ridden out for WaitOptions.ServerErrorBudget
// (DefaultServerErrorBudget, counted from the last poll that got another answer), then the
// wait ends with ErrServer and EC2's error. An Attach that ends so detaches the volume again,
// as it does when the attachment is stuck. AttachVolume, DetachVolume and DeleteVolume are not idempotent: when the
// SDK resends one whose first answer was lost, EC2 may refuse the resend because the first
// attempt worked (IncorrectState, "already in use", NotFound). Attach, Detach and Delete
// therefore describe the volume before they report such a refusal, and carry on when it shows
// their own work (an attachment to this instance, a detached or deleting volume). Create does
// not rely on the SDK for this: it resends CreateVolume itself, with the same ClientToken,
// only after looking for the volume by its token tag. Errors are *Error values naming the operation, volume, instance, device
// and last state, wrapping a sentinel (ErrNotFound, ErrInUse, ErrAttachTimeout, ErrTimeout,
// ErrServer, ErrDeviceNotFound, ErrStaleDevice, …) and the SDK error. State changes and warnings go to
// Options.Progress.
//
// # References
//
// Amazon EC2 API Reference (CreateVolume, DescribeVolumes, AttachVolume, DetachVolume,
// DeleteVolume, DescribeInstances; error codes), Amazon EBS User Guide (volume types and
// limits, device naming), Instance Metadata Service (IMDSv2), NVM Express Base Specification
// (Identify Controller data structure, admin passthrough), and the EBS conventions in
// amazon-ec2-utils (ebsnvme-id: volume ID in the serial, requested name in the vendor area).
package ebs
