//go:build !unix

package grubconf

func isNotDir(error) bool { return false }
