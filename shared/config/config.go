// Package config loads a program's settings from flags, OMNI_-prefixed
// environment variables and a config file, in that order of precedence, into
// a plain struct. Both binaries use it so every setting is reachable all
// three ways under one name: flag --nats-url, env OMNI_NATS_URL, file key
// nats-url.
//
// Sharp edge: keys in the config file that the struct does not know are an
// error (naming the file and key), because a misspelt key silently ignored
// is how a store ends up syncing to the wrong place.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix prefixes every environment variable.
const EnvPrefix = "OMNI"

// ErrConfig wraps every loading failure.
var ErrConfig = errors.New("config")

// Load fills out (a pointer to a struct whose fields carry mapstructure tags
// named like the flags) from fs, the environment and the file named by the
// flag "config" when fs has one and it is set (directly or through
// OMNI_CONFIG).
func Load(fs *pflag.FlagSet, out any) error {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	var bindErr error
	fs.VisitAll(func(f *pflag.Flag) {
		// The CLI's own flags are not settings.
		if f.Name == "help" || f.Name == "version" || bindErr != nil {
			return
		}
		bindErr = v.BindPFlag(f.Name, f)
	})
	if bindErr != nil {
		return fmt.Errorf("%w: %w", ErrConfig, bindErr)
	}
	file := v.GetString("config")
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("%w: config file: %w", ErrConfig, err)
		}
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, file, err)
		}
	}
	err := v.Unmarshal(out, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		if file != "" {
			return fmt.Errorf("%w: %s: %w", ErrConfig, file, err)
		}
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
