package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dingbridge/dingbridge/admin"
	"github.com/dingbridge/dingbridge/config"
)

func clientCommand(env config.Env) *cobra.Command {
	cmd := groupCommand("client", "Register and manage OAuth clients (add, list, show, update, delete, rotate-secret)")
	cmd.AddCommand(clientAddCommand(env), clientListCommand(env), clientShowCommand(env),
		clientUpdateCommand(env), clientDeleteCommand(env), clientRotateSecretCommand(env))
	return cmd
}

func clientAddCommand(env config.Env) *cobra.Command {
	var spec admin.ClientSpec
	var idTokenLifetime, accessTokenLifetime time.Duration
	cmd := adminCommand(env, &cobra.Command{
		Use:   "add --name NAME --redirect-uri URI [--redirect-uri URI…]",
		Short: "Register a client; prints its id and, for a confidential client, its secret (once)",
		Long: `Register a client. A confidential client's secret is printed once, to stdout:
dingbridge stores only its hash and cannot show it again.

Redirect URIs must be absolute, https (http only for 127.0.0.1, [::1] and
localhost), without a fragment or a wildcard; custom schemes (com.example.app:/cb)
are allowed only for --public clients.
` + exitCodesHelp,
		Args: positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		spec.IDTokenLifetime, spec.AccessTokenLifetime = admin.Duration(idTokenLifetime), admin.Duration(accessTokenLifetime)
		c, err := api.AddClient(cmd.Context(), spec)
		if err != nil {
			return err
		}
		return printNewSecret(out, c, "Added")
	})
	f := cmd.Flags()
	f.StringVar(&spec.ID, "id", "", "client id (default: generated)")
	f.StringVar(&spec.Name, "name", "", "name shown to people when they log in")
	f.StringArrayVar(&spec.RedirectURIs, "redirect-uri", nil, "redirect URI (repeat for several)")
	f.StringArrayVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "post-logout redirect URI (repeat for several)")
	f.BoolVar(&spec.Public, "public", false, "public client (native or browser app): no secret, PKCE required")
	f.StringSliceVar(&spec.Scopes, "scopes", nil, "extra scopes the client may ask for, beyond the standard ones")
	f.StringSliceVar(&spec.GrantTypes, "grant-types", nil, "authorization_code, refresh_token and/or device_code (default: the first two)")
	f.BoolVar(&spec.RequirePKCE, "require-pkce", false, "confidential client must use PKCE too")
	f.BoolVar(&spec.RequireConsent, "require-consent", false, "ask each person once which scopes the client may have")
	f.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "URL that receives a signed logout token when a session ends")
	f.DurationVar(&idTokenLifetime, "id-token-lifetime", 0, "id_token lifetime, e.g. 30m (default: expiry.idToken)")
	f.DurationVar(&accessTokenLifetime, "access-token-lifetime", 0, "access token lifetime (default: expiry.accessToken)")
	return cmd
}

// printNewSecret prints a client with a secret generated just now: the only time
// anyone sees it.
func printNewSecret(out *printer, c admin.ClientWithSecret, verb string) error {
	if ok, err := out.structured(c); ok {
		return err
	}
	kind := "confidential"
	if c.Public {
		kind = "public"
	}
	out.line("%s %s client %q.", verb, kind, c.Name)
	if c.Secret == "" {
		return out.fields("client id", c.ID, "client secret", "none (public clients prove themselves with PKCE)")
	}
	if err := out.fields("client id", c.ID, "client secret", c.Secret); err != nil {
		return err
	}
	out.line("\nThe secret is shown this once and cannot be shown again: dingbridge keeps only its hash.")
	out.line("Store it now; `dingbridge client rotate-secret %s` makes a new one.", c.ID)
	return nil
}

func clientListCommand(env config.Env) *cobra.Command {
	return adminCommand(env, &cobra.Command{
		Use: "list", Short: "List clients: static ones from the configuration file and registered ones",
		Args: positional(),
	}, func(cmd *cobra.Command, api admin.API, out *printer, _ []string) error {
		clients, err := api.ListClients(cmd.Context())
		if err != nil {
			return err
		}
		if ok, err := out.structured(clients); ok {
			return err
		}
		tw := out.table("ID", "NAME", "TYPE", "SOURCE", "REDIRECT URIS")
		for _, c := range clients {
			row(tw, c.ID, c.Name, clientType(c), clientSource(c), strings.Join(c.RedirectURIs, " "))
		}
		return tw.Flush()
	})
}

func clientType(c admin.Client) string {
	if c.Public {
		return "public"
	}
	return "confidential"
}

func clientSource(c admin.Client) string {
	if c.Static {
		return "static (config file)"
	}
	return "registered"
}

func clientShowCommand(env config.Env) *cobra.Command {
	return adminCommand(env, &cobra.Command{
		Use: "show ID", Short: "Show one client", Args: positional("id"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		c, err := api.GetClient(cmd.Context(), a[0])
		if err != nil {
			return err
		}
		return printClient(out, c)
	})
}

func printClient(out *printer, c admin.Client) error {
	if ok, err := out.structured(c); ok {
		return err
	}
	source := clientSource(c)
	if c.Static {
		source = "static: the configuration file's staticClients (change it there)"
	}
	grants := strings.Join(c.GrantTypes, ", ")
	if grants == "" {
		grants = "authorization_code, refresh_token (default)"
	}
	return out.fields(
		"id", c.ID, "name", c.Name, "type", clientType(c), "source", source,
		"redirect URIs", orDash(strings.Join(c.RedirectURIs, "\n")),
		"post-logout redirect URIs", orDash(strings.Join(c.PostLogoutRedirectURIs, "\n")),
		"grant types", grants, "extra scopes", orDash(strings.Join(c.Scopes, ", ")),
		"require PKCE", yesNo(c.RequirePKCE || c.Public), "require consent", yesNo(c.RequireConsent),
		"back-channel logout URI", orDash(c.BackchannelLogoutURI),
		"id_token lifetime", lifetime(c.IDTokenLifetime), "access token lifetime", lifetime(c.AccessTokenLifetime),
		"created", formatTime(c.CreatedAt), "updated", formatTime(c.UpdatedAt),
	)
}

func lifetime(d admin.Duration) string {
	if d == 0 {
		return "default"
	}
	return d.String()
}

func clientUpdateCommand(env config.Env) *cobra.Command {
	var u admin.ClientUpdate
	var name string
	var idTokenLifetime, accessTokenLifetime time.Duration
	cmd := adminCommand(env, &cobra.Command{
		Use:   "update ID [--name NAME] [--add-redirect-uri URI…] [--remove-redirect-uri URI…] …",
		Short: "Change a registered client: name, redirect URIs, post-logout redirect URIs, lifetimes",
		Args:  positional("id"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		f := cmd.Flags()
		if f.Changed("name") {
			u.Name = &name
		}
		if f.Changed("id-token-lifetime") {
			d := admin.Duration(idTokenLifetime)
			u.IDTokenLifetime = &d
		}
		if f.Changed("access-token-lifetime") {
			d := admin.Duration(accessTokenLifetime)
			u.AccessTokenLifetime = &d
		}
		c, err := api.UpdateClient(cmd.Context(), a[0], u)
		if err != nil {
			return err
		}
		return printClient(out, c)
	})
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringArrayVar(&u.AddRedirectURIs, "add-redirect-uri", nil, "redirect URI to add (repeatable)")
	f.StringArrayVar(&u.RemoveRedirectURIs, "remove-redirect-uri", nil, "redirect URI to remove (repeatable)")
	f.StringArrayVar(&u.AddPostLogoutRedirectURIs, "add-post-logout-redirect-uri", nil, "post-logout redirect URI to add (repeatable)")
	f.StringArrayVar(&u.RemovePostLogoutRedirectURIs, "remove-post-logout-redirect-uri", nil, "post-logout redirect URI to remove (repeatable)")
	f.DurationVar(&idTokenLifetime, "id-token-lifetime", 0, "id_token lifetime; 0 for the default")
	f.DurationVar(&accessTokenLifetime, "access-token-lifetime", 0, "access token lifetime; 0 for the default")
	return cmd
}

func clientDeleteCommand(env config.Env) *cobra.Command {
	return adminCommand(env, &cobra.Command{
		Use: "delete ID", Short: "Delete a registered client; its codes and tokens stop working at once", Args: positional("id"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		if err := api.DeleteClient(cmd.Context(), a[0]); err != nil {
			return err
		}
		if ok, err := out.structured(map[string]string{"deleted": a[0]}); ok {
			return err
		}
		out.line("Deleted client %q: its codes and tokens no longer work.", a[0])
		return nil
	})
}

func clientRotateSecretCommand(env config.Env) *cobra.Command {
	return adminCommand(env, &cobra.Command{
		Use:   "rotate-secret ID",
		Short: "Give a confidential client a new secret (printed once); the old one stops working at once",
		Args:  positional("id"),
	}, func(cmd *cobra.Command, api admin.API, out *printer, a []string) error {
		c, err := api.RotateClientSecret(cmd.Context(), a[0])
		if err != nil {
			return err
		}
		return printNewSecret(out, c, "New secret for")
	})
}
