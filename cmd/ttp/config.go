package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// applyConfig fills the flags the command line did not set from TTP_* environment variables
// (TTP_NATS for --nats, TTP_DRAIN_TIMEOUT for --drain-timeout), then from the YAML file named
// by --config (keys are the flag names), in that precedence: flags, environment, file.
func applyConfig(fs *flag.FlagSet, configFile string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	file := map[string]any{}
	if configFile != "" {
		data, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("config: %s: %w", configFile, err)
		}
		if len(doc.Content) > 0 {
			root := doc.Content[0]
			for i := 0; i+1 < len(root.Content); i += 2 {
				k, v := root.Content[i], root.Content[i+1]
				if fs.Lookup(k.Value) == nil || k.Value == "config" {
					return fmt.Errorf("config: %s:%d: unknown key %q", configFile, k.Line, k.Value)
				}
				var val any
				if err := v.Decode(&val); err != nil {
					return fmt.Errorf("config: %s:%d: %s: %w", configFile, v.Line, k.Value, err)
				}
				file[k.Value] = val
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("config: %s=%q: %w", env, v, e)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if e := f.Value.Set(fmt.Sprint(v)); e != nil {
				err = fmt.Errorf("config: %s: %s: %w", configFile, f.Name, e)
			}
		}
	})
	return err
}

// envName is the environment variable of a flag: TTP_ and the name in upper case, dashes as
// underscores (TTP_NATS_PASSWORD for --nats-password). Every subcommand uses these names.
func envName(flagName string) string {
	return "TTP_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
