// Package loop attaches image files to loop devices the way cryptsetup does (LOOP_CONFIGURE,
// with the LOOP_SET_FD + LOOP_SET_STATUS64 fallback of include/uapi/linux/loop.h) and finds
// and detaches them. It is Linux-only; dmcrypt.Open uses it for image files.
package loop

// Options qualify Attach.
type Options struct {
	ReadOnly  bool // LO_FLAGS_READ_ONLY and an O_RDONLY backing fd
	Autoclear bool // detach at the last close (how cryptsetup attaches images)
}
