package main

import (
	"encoding/json"
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
			row(tw, u.Subject, orDash(u.UnionID), orDash(u.Nick), orDash(u.CorpID),
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
	}))
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
		"first login", formatTime(u.FirstLogin), "last login", formatTime(u.LastLogin), "disabled", yesNo(u.Disabled),
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
