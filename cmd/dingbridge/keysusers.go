package main

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/config"
	"github.com/dingbridge/dingbridge/keys"
)

func keysCommand(env config.Env) *cobra.Command {
	cmd := groupCommand("keys", "List and rotate the keys that sign id_tokens")
	cmd.AddCommand(adminCommand(env, &cobra.Command{
		Use: "list", Short: "List signing keys: kid, algorithm, created, state (active, next, retired-until)", Args: positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		list, err := api.ListKeys(cmd.Context())
		if err != nil {
			return err
		}
		return printKeys(out, list)
	}), adminCommand(env, &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key active now; the old one stays in the JWKS until the tokens it signed expire",
		Args:  positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		k, err := api.RotateKeys(cmd.Context())
		if err != nil {
			return err
		}
		if ok, err := out.structured(k); ok {
			return err
		}
		out.line("Key %s (%s) signs from now on. The key it replaced stays in the JWKS for %.0fh, so the tokens it signed still verify.\n",
			k.ID, k.Algorithm, keyRetention.Hours())
		list, err := api.ListKeys(cmd.Context())
		if err != nil {
			return err
		}
		return printKeys(out, list)
	}))
	return cmd
}

func printKeys(out *printer, list []keys.SigningKeyInfo) error {
	if ok, err := out.structured(list); ok {
		return err
	}
	tw := out.table("KID", "ALGORITHM", "CREATED", "STATE")
	for _, k := range list {
		state := k.State
		switch k.State {
		case "retired":
			state = "retired-until " + formatTime(k.Expiry)
		case "next":
			state = "next (signs from " + formatTime(k.NotBefore) + ")"
		}
		row(tw, k.ID, k.Algorithm, formatTime(k.CreatedAt), state)
	}
	return tw.Flush()
}

func usersCommand(env config.Env) *cobra.Command {
	cmd := groupCommand("users", "List, show, disable and enable the people who have logged in")
	cmd.AddCommand(adminCommand(env, &cobra.Command{
		Use: "list", Short: "List users: subject, unionid, nick, corp, first and last login, disabled", Args: positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		users, err := api.ListUsers(cmd.Context())
		if err != nil {
			return err
		}
		if ok, err := out.structured(users); ok {
			return err
		}
		tw := out.table("SUBJECT", "UNIONID", "NICK", "CORP", "FIRST LOGIN", "LAST LOGIN", "DISABLED")
		for _, u := range users {
			unionID := orDash(u.UnionID)
			if u.UnionID == "" && !u.ProvisionedAt.IsZero() {
				unionID = "(not bound yet)"
			}
			row(tw, u.Subject, unionID, orDash(u.Nick), orDash(u.CorpID),
				formatTime(u.FirstLogin), formatTime(u.LastLogin), yesNo(u.Disabled))
		}
		return tw.Flush()
	}), adminCommand(env, &cobra.Command{
		Use: "show SUBJECT", Short: "Show one user", Args: positional("subject"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		u, err := api.GetUser(cmd.Context(), a[0])
		if err != nil {
			return err
		}
		return printUser(out, u)
	}), adminCommand(env, &cobra.Command{
		Use:   "disable SUBJECT",
		Short: "Refuse the user's next login; their refresh and access tokens stop working at once",
		Args:  positional("subject"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		u, err := api.DisableUser(cmd.Context(), a[0])
		if err != nil {
			return err
		}
		if ok, err := out.structured(u); ok {
			return err
		}
		out.line("Disabled user %s (%s): their next login is refused, and their refresh and access tokens no longer work.", u.Subject, orDash(u.Nick))
		return nil
	}), adminCommand(env, &cobra.Command{
		Use: "enable SUBJECT", Short: "Let a disabled user log in again", Args: positional("subject"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		u, err := api.EnableUser(cmd.Context(), a[0])
		if err != nil {
			return err
		}
		if ok, err := out.structured(u); ok {
			return err
		}
		out.line("Enabled user %s (%s): they can log in again.", u.Subject, orDash(u.Nick))
		return nil
	}), usersAddCommand(env), usersImportCommand(env), usersExportCommand(env),
		usersLinkCommand(env), usersUnlinkCommand(env), usersSyncCommand(env))
	return cmd
}

func usersAddCommand(env config.Env) *cobra.Command {
	var spec admin.UserSpec
	cmd := adminCommand(env, &cobra.Command{
		Use:   "add --subject S [--unionid U | --userid ID [--corp C] | --mobile +86… | --email E] [--name N]",
		Short: "Add a person before their first login, under the subject (sub) you choose; their first matching DingTalk login binds the record",
		Args:  positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		u, err := api.AddUser(cmd.Context(), spec)
		if err != nil {
			return err
		}
		if ok, err := out.structured(u); ok {
			return err
		}
		if u.UnionID != "" {
			out.line("Added user %s, bound to DingTalk unionid %s.", u.Subject, u.UnionID)
		} else {
			out.line("Added user %s: their first DingTalk login with %s binds the record.", u.Subject, provisionedBy(u))
		}
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&spec.Subject, "subject", "", "the sub the person will have (e.g. their username in your apps)")
	f.StringVar(&spec.UnionID, "unionid", "", "their DingTalk unionid: bound at once")
	f.StringVar(&spec.UserID, "userid", "", "their staff id in the organisation's directory")
	f.StringVar(&spec.CorpID, "corp", "", "the organisation of --userid (default: the one connector's corpID)")
	f.StringVar(&spec.Mobile, "mobile", "", "their mobile number, +8613800138000 (matches DingTalk's verified number)")
	f.StringVar(&spec.Email, "email", "", "their address in the organisation's directory (a personal DingTalk email never matches)")
	f.StringVar(&spec.Name, "name", "", "their name, until DingTalk tells")
	_ = cmd.MarkFlagRequired("subject")
	return cmd
}

// provisionedBy says what a provisioned record waits to be matched on.
func provisionedBy(u admin.User) string {
	var keys []string
	if u.UserID != "" {
		keys = append(keys, "userid "+u.UserID)
	}
	if u.Phone != "" {
		keys = append(keys, "mobile "+u.Phone)
	}
	if u.Email != "" {
		keys = append(keys, "email "+u.Email)
	}
	if len(keys) == 0 {
		return "the subject " + u.Subject + " (claims.subject)"
	}
	return strings.Join(keys, " or ")
}

func usersImportCommand(env config.Env) *cobra.Command {
	return adminCommand(env, &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Add people from a CSV file (columns: " + strings.Join(admin.UsersCSVColumns, ",") + "); any invalid row and nothing is added",
		Args:  positional("file"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		r := cmd.InOrStdin()
		if a[0] != "-" {
			f, err := os.Open(a[0])
			if err != nil {
				return usagef("users import: %v", err)
			}
			defer f.Close()
			r = f
		}
		specs, err := admin.ParseUsersCSV(r)
		if err != nil {
			return err
		}
		report, err := api.ImportUsers(cmd.Context(), specs)
		if err != nil {
			return err
		}
		if ok, err := out.structured(report); ok {
			if err == nil && len(report.Invalid) > 0 {
				err = usagef("%d invalid row(s): nothing was added", len(report.Invalid))
			}
			return err
		}
		for _, p := range report.Invalid {
			out.line("line %d: invalid: %s", p.Line, p.Reason)
		}
		if len(report.Invalid) > 0 {
			return usagef("%d invalid row(s) in %s: nothing was added; fix them and import the file again", len(report.Invalid), a[0])
		}
		for _, s := range report.AlreadyThere {
			out.line("already there: %s", s)
		}
		out.line("%d added, %d already there, 0 invalid.", len(report.Added), len(report.AlreadyThere))
		return nil
	})
}

func usersExportCommand(env config.Env) *cobra.Command {
	return adminCommand(env, &cobra.Command{
		Use:   "export",
		Short: "Write every user as CSV (the columns users import reads); -o json or yaml for every field",
		Args:  positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		users, err := api.ListUsers(cmd.Context())
		if err != nil {
			return err
		}
		if ok, err := out.structured(users); ok {
			return err
		}
		return admin.WriteUsersCSV(cmd.OutOrStdout(), users)
	})
}

func usersLinkCommand(env config.Env) *cobra.Command {
	var unionID string
	cmd := adminCommand(env, &cobra.Command{
		Use:   "link SUBJECT --unionid U",
		Short: "Bind a user to a DingTalk account (its unionid), as their first login would",
		Args:  positional("subject"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		u, err := api.LinkUser(cmd.Context(), a[0], unionID)
		if err != nil {
			return err
		}
		if ok, err := out.structured(u); ok {
			return err
		}
		out.line("Bound user %s to DingTalk unionid %s.", u.Subject, u.UnionID)
		return nil
	})
	cmd.Flags().StringVar(&unionID, "unionid", "", "the DingTalk unionid (the not-bound page shows it to the person)")
	_ = cmd.MarkFlagRequired("unionid")
	return cmd
}

func usersUnlinkCommand(env config.Env) *cobra.Command {
	return adminCommand(env, &cobra.Command{
		Use:   "unlink SUBJECT",
		Short: "Unbind a user from their DingTalk account; that account is logged out and will not bind to the record again",
		Args:  positional("subject"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		u, err := api.UnlinkUser(cmd.Context(), a[0])
		if err != nil {
			return err
		}
		if ok, err := out.structured(u); ok {
			return err
		}
		out.line("Unbound user %s: its DingTalk account is logged out; `dingbridge users link %s --unionid …` binds another.", u.Subject, u.Subject)
		return nil
	})
}

func usersSyncCommand(env config.Env) *cobra.Command {
	var apply bool
	cmd := adminCommand(env, &cobra.Command{
		Use:   "sync [--apply]",
		Short: "Ask the organisation's directory about every user of a connector with requireMembership; --apply disables leavers and logs them out",
		Args:  positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		report, err := api.SyncUsers(cmd.Context(), apply)
		if err != nil {
			return err
		}
		if ok, err := out.structured(report); ok {
			return err
		}
		verb := "would disable"
		if report.Applied {
			verb = "disabled"
		}
		for _, l := range report.Leavers {
			out.line("%s %s (%s): %s", verb, l.Subject, orDash(l.Nick), l.Reason)
		}
		for _, f := range report.Unknown {
			out.line("could not ask about %s: %s", f.Subject, f.Error)
		}
		out.line("%d checked, %d leaver(s), %d unknown.", report.Checked, len(report.Leavers), len(report.Unknown))
		if !report.Applied && len(report.Leavers) > 0 {
			out.line("Dry run: nothing changed. Run with --apply to disable them and log them out.")
		}
		return nil
	})
	cmd.Flags().BoolVar(&apply, "apply", false, "disable leavers and log them out (default: only report)")
	return cmd
}

func printUser(out *printer, u admin.User) error {
	if ok, err := out.structured(u); ok {
		return err
	}
	return out.fields(
		"subject", u.Subject, "connector", u.ConnectorID, "unionid", orDash(u.UnionID), "openid", orDash(u.OpenID),
		"userid", orDash(u.UserID), "corp", orDash(u.CorpID), "nick", orDash(u.Nick), "avatar", orDash(u.AvatarURL),
		"email", orDash(u.Email), "phone", orDash(u.Phone),
		"title", orDash(u.Title), "job number", orDash(u.JobNumber), "org email", orDash(u.OrgEmail),
		"groups", orDash(strings.Join(u.Groups, "\n")),
		"username", orDash(u.Username),
		"first login", formatTime(u.FirstLogin), "last login", formatTime(u.LastLogin), "disabled", disabledText(u),
		"provisioned", formatTime(u.ProvisionedAt), "bound", formatTime(u.BoundAt),
		"membership", membershipText(u),
	)
}

func claimsCommand(env config.Env) *cobra.Command {
	var clientID, subject string
	var scopes []string
	cmd := adminCommand(env, &cobra.Command{
		Use:   "claims --client ID --user SUBJECT [--scopes openid,profile,…]",
		Short: "Show the id_token claims and userinfo a user would get at a client",
		Args:  positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		p, err := api.Claims(cmd.Context(), clientID, subject, scopes)
		if err != nil {
			return err
		}
		if ok, err := out.structured(p); ok {
			return err
		}
		idToken, _ := json.MarshalIndent(p.IDToken, "", "  ")
		userinfo, _ := json.MarshalIndent(p.Userinfo, "", "  ")
		out.line("User %s at client %s, scopes %s\n", p.Subject, p.ClientID, strings.Join(p.Scopes, " "))
		out.line("id_token claims:\n%s\n\nuserinfo:\n%s", idToken, userinfo)
		for _, n := range p.Notes {
			out.line("\nnote: %s", n)
		}
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&clientID, "client", "", "client id")
	f.StringVar(&subject, "user", "", "user's subject (see `dingbridge users list`)")
	f.StringSliceVar(&scopes, "scopes", nil, "scopes the client asks for (default: openid,profile,email,phone)")
	_ = cmd.MarkFlagRequired("client")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

func disabledText(u admin.User) string {
	if !u.Disabled {
		return "no"
	}
	if u.DisabledReason == "" {
		return "yes"
	}
	return "yes, " + formatTime(u.DisabledAt) + ": " + u.DisabledReason
}

func membershipText(u admin.User) string {
	if u.MembershipCheckedAt.IsZero() {
		return "-"
	}
	return "confirmed by the directory " + formatTime(u.MembershipCheckedAt)
}
