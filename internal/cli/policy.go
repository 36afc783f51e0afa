package cli

import "github.com/spf13/cobra"

func addPolicyCommands(root *cobra.Command) {}
