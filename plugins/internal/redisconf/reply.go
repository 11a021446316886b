package redisconf

import (
	"errors"

	"github.com/redis/go-redis/v9"
)

// IsReplyError reports whether err is an error reply from the server (which
// a pipeline's per-command results carry) rather than a connection failure.
func IsReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
