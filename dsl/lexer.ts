/**
 * Source text → tokens. Never throws for bad input: problems become diagnostics
 * and the lexer carries on, so one run reports every lexical error.
 */
import { diagnostic, type Diagnostic, type Span } from './errors.js';

export type TokenType = 'ident' | 'keyword' | 'string' | 'number' | 'punct' | 'eof';

export interface Token {
  readonly type: TokenType;
  /** Identifier/keyword name, punctuation text, or the string's decoded value. */
  readonly value: string;
  /** For numbers: the value. */
  readonly number?: number;
  readonly span: Span;
  /** First token on its line: where recovery may resume. */
  readonly nl: boolean;
}

export const KEYWORDS: ReadonlySet<string> = new Set([
  'on', 'default', 'when', 'let', 'drop', 'if', 'else', 'and', 'or', 'not', 'in', 'true', 'false', 'null',
]);

/** Longest source accepted, in characters. */
export const MAX_SOURCE_LENGTH = 256 * 1024;

const PUNCT3 = ['...'];
const PUNCT2 = ['==', '!=', '<=', '>=', '??', '=>', '&&', '||'];
const PUNCT1 = '{}[]().,:;=<>+-*/%?!&';

export interface LexResult {
  readonly tokens: Token[];
  readonly errors: Diagnostic[];
}

export function lex(source: string): LexResult {
  const tokens: Token[] = [];
  const errors: Diagnostic[] = [];
  let line = 1;
  let lineStart = 0;
  let i = 0;
  let nl = true;
  const n = source.length;
  const span = (start: number, end: number, l = line, ls = lineStart): Span => ({ line: l, column: start - ls + 1, start, end });
  const error = (code: Parameters<typeof diagnostic>[0], message: string, s: Span) => {
    if (errors.length < 50) errors.push(diagnostic(code, message, s, source));
  };
  if (n > MAX_SOURCE_LENGTH) {
    error('DSL_S106', `the mapping is ${n} characters; the limit is ${MAX_SOURCE_LENGTH}`, span(0, 1));
    tokens.push({ type: 'eof', value: '', span: span(0, 0), nl: true });
    return { tokens, errors };
  }
  const push = (type: TokenType, value: string, start: number, extra: { number?: number; line?: number; lineStart?: number } = {}) => {
    const s = span(start, i, extra.line ?? line, extra.lineStart ?? lineStart);
    tokens.push(extra.number === undefined ? { type, value, span: s, nl } : { type, value, number: extra.number, span: s, nl });
    nl = false;
  };

  while (i < n) {
    const c = source[i]!;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      nl = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\uFEFF') {
      i++;
      continue;
    }
    if (c === '/' && source[i + 1] === '/') {
      while (i < n && source[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      const start = i;
      const startLine = line;
      const startLineStart = lineStart;
      i += 2;
      while (i < n && !(source[i] === '*' && source[i + 1] === '/')) {
        if (source[i] === '\n') {
          line++;
          lineStart = i + 1;
          nl = true;
        }
        i++;
      }
      if (i >= n) {
        error('DSL_S105', 'this comment has no closing */', span(start, start + 2, startLine, startLineStart));
        break;
      }
      i += 2;
      continue;
    }
    const start = i;
    if (isIdentStart(c)) {
      while (i < n && isIdentPart(source[i]!)) i++;
      const word = source.slice(start, i);
      push(KEYWORDS.has(word) ? 'keyword' : 'ident', word, start);
      continue;
    }
    if (isDigit(c)) {
      const m = /^(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(source.slice(i, i + 400));
      const text = m ? m[0] : c;
      i += text.length;
      // A number glued to letters or digits (`1abc`, `01`) is one bad token.
      if (!m || (i < n && (isIdentPart(source[i]!) || source[i] === '.' && isDigit(source[i + 1] ?? '')))) {
        while (i < n && (isIdentPart(source[i]!) || source[i] === '.')) i++;
        error('DSL_S104', `"${source.slice(start, Math.min(i, start + 40))}" is not a number`, span(start, i));
        push('number', '0', start, { number: 0 });
        continue;
      }
      const value = Number(text);
      if (!Number.isFinite(value)) {
        error('DSL_S104', `${text.slice(0, 40)} is too large`, span(start, i));
        push('number', '0', start, { number: 0 });
        continue;
      }
      push('number', text, start, { number: value });
      continue;
    }
    if (c === '"' || c === "'") {
      const value = readString(c, start);
      if (value !== null) push('string', value, start);
      continue;
    }
    const three = source.slice(i, i + 3);
    if (PUNCT3.includes(three)) {
      i += 3;
      push('punct', three, start);
      continue;
    }
    const two = source.slice(i, i + 2);
    if (PUNCT2.includes(two)) {
      i += 2;
      push('punct', two, start);
      continue;
    }
    if (PUNCT1.includes(c)) {
      i++;
      push('punct', c, start);
      continue;
    }
    const cp = source.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    i += ch.length;
    error('DSL_S101', `unexpected character ${JSON.stringify(ch)}${c === '`' ? ' (strings use "double" or \'single\' quotes)' : ''}`, span(start, i));
  }
  tokens.push({ type: 'eof', value: '', span: span(n, n), nl: true });
  return { tokens, errors };

  /** Reads a quoted string starting at `start`; JSON escapes, plus \' in single quotes. */
  function readString(quote: string, begin: number): string | null {
    i++;
    let out = '';
    let chunk = i;
    while (i < n) {
      const ch = source[i]!;
      if (ch === quote) {
        out += source.slice(chunk, i);
        i++;
        return out;
      }
      if (ch === '\n') break;
      if (ch === '\\') {
        out += source.slice(chunk, i);
        const esc = source[i + 1];
        const simple: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (esc !== undefined && Object.hasOwn(simple, esc)) {
          out += simple[esc];
          i += 2;
        } else if (esc === 'u' && /^[0-9a-fA-F]{4}$/.test(source.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(source.slice(i + 2, i + 6), 16));
          i += 6;
        } else {
          error('DSL_S103', `\\${esc === undefined || esc === '\n' ? '' : esc} is not an escape (use \\n, \\t, \\", \\\\, \\uXXXX …)`, span(i, Math.min(i + 2, n)));
          i += esc === undefined || esc === '\n' ? 1 : 2;
        }
        chunk = i;
        continue;
      }
      i++;
    }
    error('DSL_S102', 'this string has no closing quote on its line', span(begin, begin + 1));
    push('string', out + source.slice(chunk, i), begin);
    return null;
  }
}

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === '$';
}
function isIdentPart(c: string): boolean {
  return isIdentStart(c) || isDigit(c);
}
function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}
