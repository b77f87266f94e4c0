import { isAllowedHost, isHostPattern, safeUrl, urlReference } from './urls';

describe('safeUrl', () => {
  it.each([
    ['https://docs.example.com/toys', 'https://docs.example.com/toys'],
    ['http://docs.example.com', 'http://docs.example.com/'],
    ['  https://docs.example.com/a b ', 'https://docs.example.com/a%20b'],
    ['javascript:alert(document.cookie)', undefined],
    ['JAVASCRIPT:alert(1)', undefined],
    ['data:text/html,<script>alert(1)</script>', undefined],
    ['file:///etc/passwd', undefined],
    ['ftp://example.com/x', undefined],
    ['relative/path', undefined],
    ['//evil.example.net/x', undefined],
    ['https://docs.example.com@evil.example.net/login', undefined],
    ['https://user:secret@docs.example.com/', undefined],
    ['', undefined],
    [null, undefined],
  ])('%j -> %j', (value, expected) => {
    expect(safeUrl(value, [])).toBe(expected);
  });

  it('only allowed hosts, where some are configured', () => {
    const allowed = ['docs.example.com', '*.example.org'];
    expect(safeUrl('https://docs.example.com/a', allowed)).toBe('https://docs.example.com/a');
    expect(safeUrl('https://DOCS.example.com./a', allowed)).toBe('https://docs.example.com./a');
    expect(safeUrl('https://api.example.org/a', allowed)).toBe('https://api.example.org/a');
    expect(safeUrl('https://example.org/a', allowed)).toBeUndefined();
    expect(safeUrl('https://evilexample.org/a', allowed)).toBeUndefined();
    expect(safeUrl('https://docs.example.com.evil.example.net/a', allowed)).toBeUndefined();
  });
});

describe('urlReference', () => {
  it.each([
    ['url:https://git.example.com/a/b', 'url:https://git.example.com/a/b'],
    ['https://git.example.com/a/b', 'url:https://git.example.com/a/b'],
    ['dir:../../etc', undefined],
    ['dir:.', undefined],
    ['file:/etc/passwd', undefined],
    ['url:file:///etc/passwd', undefined],
    ['url:javascript:alert(1)', undefined],
    ['github:org/repo', undefined],
    ['git@git.example.com:a/b.git', undefined],
  ])('%j -> %j', (value, expected) => {
    expect(urlReference(value, [])).toBe(expected);
  });
});

describe('host patterns', () => {
  it.each([
    ['docs.example.com', true],
    ['*.example.com', true],
    ['localhost', true],
    ['10.0.0.1', true],
    ['https://docs.example.com', false],
    ['docs.example.com/path', false],
    ['*example.com', false],
    ['a.*.example.com', false],
    ['', false],
  ])('%j: %s', (pattern, valid) => {
    expect(isHostPattern(pattern)).toBe(valid);
  });

  it('a wildcard covers subdomains, not the domain itself', () => {
    expect(isAllowedHost('a.b.example.com', ['*.example.com'])).toBe(true);
    expect(isAllowedHost('example.com', ['*.example.com'])).toBe(false);
    expect(isAllowedHost('anything.example.net', [])).toBe(true);
  });
});
