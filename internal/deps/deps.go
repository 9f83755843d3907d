// Package deps pins the module's dependencies while the packages that use them are written.
package deps

import (
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	_ "github.com/aws/aws-sdk-go-v2/service/ec2"
	_ "github.com/aws/smithy-go"
	_ "github.com/stretchr/testify/require"
	_ "golang.org/x/crypto/xts"
	_ "golang.org/x/crypto/twofish"
	_ "golang.org/x/crypto/ripemd160"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
)
