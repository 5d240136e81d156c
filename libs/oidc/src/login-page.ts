// The provider's only page: eNZi username and password, no script, no external resources.
const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function loginPage(options: {
  action: string;
  clientName: string;
  error?: string;
  username?: string;
}): string {
  const error = options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to orca</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:24rem;margin:4rem auto}label{display:block;margin:.5rem 0}
input{width:100%;padding:.4rem}.error{color:#b00}</style></head>
<body><h1>Sign in</h1><p>to continue to ${escapeHtml(options.clientName)}</p>${error}
<form method="post" action="${escapeHtml(options.action)}" autocomplete="off">
<label>Username <input name="username" required value="${escapeHtml(options.username ?? '')}"></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in</button></form></body></html>`;
}

export function confirmPage(options: { action: string; clientName: string; username: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Continue to ${escapeHtml(options.clientName)}</title></head>
<body><h1>Continue</h1><p>Signed in as ${escapeHtml(options.username)}. Continue to ${escapeHtml(options.clientName)}?</p>
<form method="post" action="${escapeHtml(options.action)}"><button type="submit">Continue</button></form></body></html>`;
}

export function errorPage(title: string, message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`;
}
