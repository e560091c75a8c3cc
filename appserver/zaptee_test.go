package appserver

import (
	"testing"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

// zapTee sends logs both to the observer and to the test log (-v).
func zapTee(core zapcore.Core, t testing.TB) zapcore.Core {
	return zapcore.NewTee(core, zaptest.NewLogger(t).Core())
}
