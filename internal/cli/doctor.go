package cli

import "github.com/spf13/cobra"

func addDoctorCommand(root *cobra.Command) {}
