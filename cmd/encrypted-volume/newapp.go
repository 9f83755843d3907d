package main

import "io"

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{
		stdin: stdin, stdout: stdout, stderr: stderr,
		term:     detectTerminal(stdin),
		newCloud: newEBSCloud(stdout),
		local:    sysLocal{},
		boot:     grubBoot{},
		bootID:   bootIDPath,
	}
}
