/**
 * Tokens → typed AST (ast.ts), by recursive descent. On an error the parser
 * records a diagnostic and skips to the next statement (a `;`, a `}` or a token
 * that starts a line), so one run reports several errors.
 *
 * Grammar (lowest precedence first):
 *   mapping    = { "let" NAME "=" expr | rule | "default" block }
 *   rule       = "on" selector [ "when" (jsonObject | expr) ] block
 *   selector   = "any" | TYPE { "," TYPE } [ STRING { "," STRING } ] | STRING { "," STRING }
 *   block      = "{" { stmt [";"] } "}"
 *   stmt       = "let" NAME "=" expr | "drop" | "..." expr
 *              | "if" expr block [ "else" ( block | ifStmt ) ] | target "=" expr
 *   target     = (NAME | STRING) { "." (NAME | STRING) | "[" (NUMBER | STRING) "]" }
 *   expr       = nullish [ "?" expr ":" expr ]
 *   nullish    = or { "??" or }             or  = and { ("or" | "||") and }
 *   and        = not { ("and" | "&&") not } not = "not" not | compare
 *   compare    = concat [ ("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") concat ]
 *   concat     = sum { "&" sum }            sum = product { ("+" | "-") product }
 *   product    = unary { ("*" | "/" | "%") unary }
 *   unary      = ("-" | "!") unary | postfix
 *   postfix    = primary { "." NAME | "[" expr "]" }     call = NAME "(" args ")"
 *   primary    = NUMBER | STRING | true | false | null | NAME | call | lambda
 *              | "(" expr ")" | "{" entries "}" | "[" items "]"
 *   lambda     = NAME "=>" expr | "(" [ NAME { "," NAME } ] ")" "=>" expr
 */
import type { BinaryOp, DefaultRule, EventName, EventTypeName, Expr, Mapping, Param, PathSegment, Property, Rule, Spread, Stmt, TopLevel } from './ast.js';
import { EVENT_TYPE_NAMES } from './ast.js';
import { diagnostic, type Diagnostic, type DslErrorCode, type Span } from './errors.js';
import { lex, type Token } from './lexer.js';

/** Deepest nesting of expressions and blocks. */
export const MAX_NESTING = 64;
/** Deepest syntax tree of one expression (long operator chains nest too). */
export const MAX_EXPRESSION_DEPTH = 256;
const MAX_ERRORS = 50;

class ParseError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

export interface ParseResult {
  readonly ast: Mapping;
  readonly errors: Diagnostic[];
}

/** Parses a whole mapping. */
export function parse(source: string): ParseResult {
  const { tokens, errors } = lex(source);
  const p = new Parser(source, tokens, errors);
  return { ast: p.mapping(), errors: p.errors };
}

/** Parses one expression (a condition for a policy's `when`). */
export function parseExpression(source: string): { ast: Expr | null; errors: Diagnostic[] } {
  const { tokens, errors } = lex(source);
  const p = new Parser(source, tokens, errors);
  return { ast: p.standaloneExpression(), errors: p.errors };
}

class Parser {
  #pos = 0;
  #depth = 0;
  /** Depth of every expression node built so far; children are always built first. */
  readonly #depths = new WeakMap<object, number>();
  readonly errors: Diagnostic[];

  constructor(readonly source: string, readonly tokens: Token[], lexErrors: Diagnostic[]) {
    this.errors = [...lexErrors];
  }

  // ---------------------------------------------------------------- tokens

  get #tok(): Token {
    return this.tokens[this.#pos]!;
  }
  #peek(k = 1): Token {
    return this.tokens[Math.min(this.#pos + k, this.tokens.length - 1)]!;
  }
  #next(): Token {
    const t = this.#tok;
    if (t.type !== 'eof') this.#pos++;
    return t;
  }
  #is(type: Token['type'], value?: string): boolean {
    const t = this.#tok;
    return t.type === type && (value === undefined || t.value === value);
  }
  #punct(value: string): boolean {
    return this.#is('punct', value);
  }
  #kw(value: string): boolean {
    return this.#is('keyword', value);
  }
  #fail(code: DslErrorCode, message: string, span: Span = this.#tok.span): never {
    throw new ParseError(diagnostic(code, message, span, this.source));
  }
  #expectPunct(value: string, context: string): Token {
    if (!this.#punct(value)) this.#fail('DSL_S201', `expected "${value}" ${context}, found ${describe(this.#tok)}`);
    return this.#next();
  }
  #record(d: Diagnostic): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push(d);
    else if (this.errors.length === MAX_ERRORS) {
      this.errors.push(diagnostic('DSL_S209', `stopped after ${MAX_ERRORS} errors`, this.#tok.span, this.source));
    }
  }
  #span(from: Span, to: Span = this.tokens[Math.max(0, this.#pos - 1)]!.span): Span {
    return { line: from.line, column: from.column, start: from.start, end: Math.max(from.end, to.end) };
  }
  #nest<T>(fn: () => T): T {
    if (++this.#depth > MAX_NESTING) {
      this.#depth = 0; // let recovery parse what follows
      this.#fail('DSL_S205', `expressions and blocks nest deeper than ${MAX_NESTING} levels`);
    }
    try {
      return fn();
    } finally {
      this.#depth = Math.max(0, this.#depth - 1);
    }
  }

  /** Records the depth of a new node; a tree too deep for the later stages is an error. */
  #mk<T extends Expr>(node: T): T {
    let d = 0;
    for (const c of exprChildren(node)) d = Math.max(d, this.#depths.get(c) ?? 1);
    if (d + 1 > MAX_EXPRESSION_DEPTH) this.#fail('DSL_S205', `this expression nests deeper than ${MAX_EXPRESSION_DEPTH} levels; split it with let`, node.span);
    this.#depths.set(node, d + 1);
    return node;
  }

  /** Skips to where a statement or top-level item may start; always advances at least one token. */
  #sync(topLevel: boolean): void {
    const start = this.#pos;
    let depth = 0;
    while (!this.#is('eof')) {
      const t = this.#tok;
      if (this.#pos > start) {
        if (depth <= 0 && t.type === 'keyword' && (t.value === 'on' || t.value === 'default')) return;
        if (!topLevel && depth <= 0 && t.nl && (t.type === 'ident' || t.type === 'string' || (t.type === 'keyword' && ['let', 'drop', 'if'].includes(t.value)) || t.value === '...')) return;
        if (topLevel && depth <= 0 && t.nl && t.type === 'keyword' && t.value === 'let') return;
        if (!topLevel && depth <= 0 && t.value === '}' && t.type === 'punct') return;
      }
      if (t.type === 'punct') {
        if (t.value === '{' || t.value === '(' || t.value === '[') depth++;
        else if (t.value === '}' || t.value === ')' || t.value === ']') depth--;
        else if (t.value === ';' && depth <= 0) {
          this.#next();
          return;
        }
      }
      this.#next();
      if (topLevel && depth <= 0 && t.value === '}' && t.type === 'punct' && this.#pos > start) return;
    }
  }

  // ---------------------------------------------------------------- top level

  mapping(): Mapping {
    const items: TopLevel[] = [];
    let sawDefault: DefaultRule | null = null;
    while (!this.#is('eof') && this.errors.length <= MAX_ERRORS) {
      try {
        if (this.#kw('let')) {
          items.push(this.#let());
        } else if (this.#kw('on')) {
          items.push(this.#rule());
        } else if (this.#kw('default')) {
          const d = this.#default();
          if (sawDefault) this.#record(diagnostic('DSL_S204', 'a mapping has one default rule; another one is above', d.span, this.source));
          else sawDefault = d;
          items.push(d);
        } else if (this.#punct(';')) {
          this.#next();
        } else if (this.#tok.type === 'ident' || this.#tok.type === 'string') {
          this.#fail('DSL_S207', `statements go inside a rule: on track "Order Completed" { ... } or default { ... }`);
        } else {
          this.#fail('DSL_S201', `expected "on", "default" or "let", found ${describe(this.#tok)}`);
        }
      } catch (err) {
        if (!(err instanceof ParseError)) throw err;
        this.#record(err.diagnostic);
        this.#sync(true);
      }
    }
    return { type: 'Mapping', items };
  }

  standaloneExpression(): Expr | null {
    try {
      const e = this.#expr();
      if (!this.#is('eof')) this.#fail('DSL_S201', `expected the end of the condition, found ${describe(this.#tok)}`);
      return e;
    } catch (err) {
      if (!(err instanceof ParseError)) throw err;
      this.#record(err.diagnostic);
      return null;
    }
  }

  #let(): Extract<Stmt, { type: 'Let' }> {
    const start = this.#next().span;
    const name = this.#tok;
    if (name.type !== 'ident') this.#fail('DSL_S201', `expected a name after "let", found ${describe(name)}`);
    this.#next();
    this.#expectPunct('=', `after "let ${name.value}"`);
    const value = this.#expr();
    return { type: 'Let', name: name.value, nameSpan: name.span, value, span: this.#span(start) };
  }

  #rule(): Rule {
    const start = this.#next().span;
    const eventTypes: EventTypeName[] = [];
    const events: EventName[] = [];
    if (this.#is('ident', 'any')) {
      this.#next();
    } else if (this.#is('string')) {
      eventTypes.push('track');
    } else {
      for (;;) {
        const t = this.#tok;
        if (t.type !== 'ident' || !(EVENT_TYPE_NAMES as readonly string[]).includes(t.value)) {
          this.#fail(t.type === 'ident' ? 'DSL_S206' : 'DSL_S201', `expected an event type (${EVENT_TYPE_NAMES.join(', ')}, any) or an event name in quotes, found ${describe(t)}`);
        }
        this.#next();
        if (!eventTypes.includes(t.value as EventTypeName)) eventTypes.push(t.value as EventTypeName);
        if (this.#punct(',') && this.#peek().type === 'ident') {
          this.#next();
          continue;
        }
        break;
      }
    }
    if (this.#is('string')) {
      for (;;) {
        const t = this.#next();
        events.push({ value: t.value, span: t.span });
        if (this.#punct(',') && this.#peek().type === 'string') {
          this.#next();
          continue;
        }
        break;
      }
    }
    let when: Expr | null = null;
    if (this.#kw('when')) {
      this.#next();
      when = this.#punct('{') ? this.#jsonLogicObject() : this.#expr();
    }
    const body = this.#block();
    return { type: 'Rule', eventTypes, events, when, body, span: this.#span(start) };
  }

  #default(): DefaultRule {
    const start = this.#next().span;
    const body = this.#block();
    return { type: 'Default', body, span: this.#span(start, start) };
  }

  #block(): Stmt[] {
    return this.#nest(() => {
      this.#expectPunct('{', 'to open the block');
      const out: Stmt[] = [];
      while (!this.#punct('}') && !this.#is('eof')) {
        if (this.#punct(';')) {
          this.#next();
          continue;
        }
        const before = this.#pos;
        try {
          out.push(this.#stmt());
        } catch (err) {
          if (!(err instanceof ParseError)) throw err;
          this.#record(err.diagnostic);
          if (this.errors.length > MAX_ERRORS) throw err;
          this.#sync(false);
          if (this.#pos === before) this.#next();
          if (this.#kw('on') || this.#kw('default')) return out; // the block was never closed
        }
      }
      this.#expectPunct('}', 'to close the block');
      return out;
    });
  }

  #stmt(): Stmt {
    const t = this.#tok;
    if (this.#kw('let')) return this.#let();
    if (this.#kw('drop')) {
      this.#next();
      return { type: 'Drop', span: t.span };
    }
    if (this.#kw('if')) return this.#if();
    if (this.#punct('...')) {
      this.#next();
      const arg = this.#expr();
      return { type: 'SpreadStatement', arg, span: this.#span(t.span) };
    }
    if (t.type === 'ident' || t.type === 'string') {
      const target = this.#target();
      this.#expectPunct('=', 'after the output path (statements look like  path = expression)');
      const value = this.#expr();
      return { type: 'Assign', target, value, span: this.#span(t.span) };
    }
    this.#fail('DSL_S201', `expected a statement (path = value, let, if, drop or ...object), found ${describe(t)}`);
  }

  #if(): Stmt {
    const start = this.#next().span;
    const test = this.#expr();
    const then = this.#block();
    let otherwise: Stmt[] | null = null;
    if (this.#kw('else')) {
      this.#next();
      otherwise = this.#kw('if') ? this.#nest(() => [this.#if()]) : this.#block();
    }
    return { type: 'If', test, then, otherwise, span: this.#span(start, start) };
  }

  #target(): PathSegment[] {
    const segs: PathSegment[] = [];
    const first = this.#next();
    segs.push({ key: first.value, span: first.span });
    for (;;) {
      if (this.#punct('.')) {
        this.#next();
        const k = this.#tok;
        if (k.type !== 'ident' && k.type !== 'keyword' && k.type !== 'string') this.#fail('DSL_S203', `expected a field name after ".", found ${describe(k)}`);
        this.#next();
        segs.push({ key: k.value, span: k.span });
      } else if (this.#punct('[')) {
        this.#next();
        const k = this.#tok;
        if (k.type === 'number' && Number.isInteger(k.number)) segs.push({ key: k.number!, span: k.span });
        else if (k.type === 'string') segs.push({ key: k.value, span: k.span });
        else this.#fail('DSL_S203', `an output path takes a number or a quoted name in [ ], found ${describe(k)}`);
        this.#next();
        this.#expectPunct(']', 'to close the index');
      } else break;
    }
    if (!this.#punct('=')) {
      const t = this.#tok;
      if (t.type === 'punct' && ['(', '+', '-', '?', '??', '=='].includes(t.value)) {
        this.#fail('DSL_S203', `a statement assigns an output path: write  ${segs.map((s) => s.key).join('.')} = <expression>`, t.span);
      }
    }
    return segs;
  }

  // ---------------------------------------------------------------- expressions

  #expr(): Expr {
    return this.#nest(() => {
      const test = this.#nullish();
      if (!this.#punct('?')) return test;
      this.#next();
      const then = this.#expr();
      this.#expectPunct(':', 'in a conditional (test ? then : else)');
      const otherwise = this.#expr();
      return this.#mk({ type: 'Conditional', test, then, otherwise, span: this.#span(test.span) });
    });
  }

  #nullish(): Expr {
    let left = this.#or();
    while (this.#punct('??')) {
      this.#next();
      const right = this.#or();
      left = this.#mk({ type: 'Logical', op: '??', left, right, span: this.#span(left.span) });
    }
    return left;
  }

  #or(): Expr {
    let left = this.#and();
    while (this.#kw('or') || this.#punct('||')) {
      this.#next();
      const right = this.#and();
      left = this.#mk({ type: 'Logical', op: 'or', left, right, span: this.#span(left.span) });
    }
    return left;
  }

  #and(): Expr {
    let left = this.#not();
    while (this.#kw('and') || this.#punct('&&')) {
      this.#next();
      const right = this.#not();
      left = this.#mk({ type: 'Logical', op: 'and', left, right, span: this.#span(left.span) });
    }
    return left;
  }

  #not(): Expr {
    if (this.#kw('not')) {
      const start = this.#next().span;
      const arg = this.#nest(() => this.#not());
      return this.#mk({ type: 'Unary', op: 'not', arg, span: this.#span(start) });
    }
    return this.#compare();
  }

  #compare(): Expr {
    const left = this.#concat();
    const t = this.#tok;
    const ops = ['==', '!=', '<', '<=', '>', '>='];
    if ((t.type === 'punct' && ops.includes(t.value)) || (t.type === 'keyword' && t.value === 'in')) {
      this.#next();
      const right = this.#concat();
      const node: Expr = this.#mk({ type: 'Binary', op: t.value as BinaryOp, left, right, span: this.#span(left.span), opSpan: t.span });
      const u = this.#tok;
      if ((u.type === 'punct' && ops.includes(u.value)) || (u.type === 'keyword' && u.value === 'in')) {
        this.#fail('DSL_S201', `comparisons do not chain; write (a ${t.value} b) and (b ${u.value} c)`, u.span);
      }
      return node;
    }
    if (t.type === 'punct' && t.value === '=') this.#fail('DSL_S201', '"=" assigns; compare with "=="');
    return left;
  }

  #binaryLevel(ops: readonly string[], next: () => Expr): Expr {
    let left = next();
    while (this.#tok.type === 'punct' && ops.includes(this.#tok.value)) {
      const op = this.#next();
      const right = next();
      left = this.#mk({ type: 'Binary', op: op.value as BinaryOp, left, right, span: this.#span(left.span), opSpan: op.span });
    }
    return left;
  }

  #concat(): Expr {
    return this.#binaryLevel(['&'], () => this.#sum());
  }
  #sum(): Expr {
    return this.#binaryLevel(['+', '-'], () => this.#product());
  }
  #product(): Expr {
    return this.#binaryLevel(['*', '/', '%'], () => this.#unary());
  }

  #unary(): Expr {
    if (this.#punct('-') || this.#punct('!')) {
      const op = this.#next();
      const arg = this.#nest(() => this.#unary());
      if (op.value === '-' && arg.type === 'Literal' && typeof arg.value === 'number') {
        return { type: 'Literal', value: -arg.value, span: this.#span(op.span) };
      }
      return this.#mk({ type: 'Unary', op: op.value === '-' ? '-' : 'not', arg, span: this.#span(op.span) });
    }
    return this.#postfix();
  }

  #postfix(): Expr {
    let e = this.#primary();
    for (;;) {
      if (this.#punct('.')) {
        this.#next();
        const k = this.#tok;
        if (k.type !== 'ident' && k.type !== 'keyword') this.#fail('DSL_S201', `expected a field name after ".", found ${describe(k)}`);
        this.#next();
        e = this.#mk({ type: 'Member', object: e, property: k.value, propertySpan: k.span, span: this.#span(e.span) });
      } else if (this.#punct('[')) {
        this.#next();
        const index = this.#expr();
        this.#expectPunct(']', 'to close the index');
        e = index.type === 'Literal' && typeof index.value === 'string'
          ? this.#mk({ type: 'Member', object: e, property: index.value, propertySpan: index.span, span: this.#span(e.span) })
          : this.#mk({ type: 'Index', object: e, index, span: this.#span(e.span) });
      } else if (this.#punct('(')) {
        this.#fail('DSL_S201', e.type === 'Member'
          ? `only functions can be called: write ${e.property}(value) instead of value.${e.property}()`
          : 'only a function name can be called');
      } else return e;
    }
  }

  #primary(): Expr {
    const t = this.#tok;
    switch (t.type) {
      case 'number':
        this.#next();
        return { type: 'Literal', value: t.number!, span: t.span };
      case 'string':
        this.#next();
        return { type: 'Literal', value: t.value, span: t.span };
      case 'keyword':
        if (t.value === 'true' || t.value === 'false' || t.value === 'null') {
          this.#next();
          return { type: 'Literal', value: t.value === 'null' ? null : t.value === 'true', span: t.span };
        }
        break;
      case 'ident': {
        if (this.#peek().type === 'punct' && this.#peek().value === '=>') {
          this.#next();
          this.#next();
          const body = this.#expr();
          return this.#mk({ type: 'Lambda', params: [{ name: t.value, span: t.span }], body, span: this.#span(t.span) });
        }
        this.#next();
        if (this.#punct('(')) return this.#call(t);
        return { type: 'Identifier', name: t.value, span: t.span };
      }
      case 'punct':
        if (t.value === '(') {
          const lambda = this.#lambdaParams();
          if (lambda) {
            const body = this.#expr();
            return this.#mk({ type: 'Lambda', params: lambda, body, span: this.#span(t.span) });
          }
          this.#next();
          const e = this.#expr();
          this.#expectPunct(')', 'to close the parenthesis');
          return e;
        }
        if (t.value === '{') return this.#object();
        if (t.value === '[') return this.#array();
        break;
      default:
        break;
    }
    this.#fail('DSL_S202', `expected an expression, found ${describe(t)}`);
  }

  /** At "(": the parameters of a lambda, or null when this is a parenthesised expression. */
  #lambdaParams(): Param[] | null {
    let k = 1;
    const params: Param[] = [];
    if (!(this.#peek(k).type === 'punct' && this.#peek(k).value === ')')) {
      for (;;) {
        const t = this.#peek(k);
        if (t.type !== 'ident') return null;
        params.push({ name: t.value, span: t.span });
        k++;
        const sep = this.#peek(k);
        if (sep.type === 'punct' && sep.value === ',') {
          k++;
          continue;
        }
        break;
      }
      if (!(this.#peek(k).type === 'punct' && this.#peek(k).value === ')')) return null;
    }
    const arrow = this.#peek(k + 1);
    if (!(arrow.type === 'punct' && arrow.value === '=>')) return null;
    for (let j = 0; j <= k + 1; j++) this.#next();
    return params;
  }

  #call(name: Token): Expr {
    this.#next(); // (
    const args: Expr[] = [];
    while (!this.#punct(')')) {
      if (this.#is('eof')) this.#fail('DSL_S201', `expected ")" to close ${name.value}(`);
      args.push(this.#expr());
      if (this.#punct(',')) this.#next();
      else if (!this.#punct(')')) this.#fail('DSL_S201', `expected "," or ")" in the arguments of ${name.value}, found ${describe(this.#tok)}`);
    }
    this.#next();
    if (name.value === 'jsonlogic') {
      const span = this.#span(name.span);
      if (args.length !== 1) this.#fail('DSL_T102', `jsonlogic takes one JSON-Logic rule, got ${args.length} arguments`, span);
      return { type: 'JsonLogic', rule: toJson(args[0]!, this), span };
    }
    return this.#mk({ type: 'Call', callee: name.value, calleeSpan: name.span, args, span: this.#span(name.span) });
  }

  #object(): Expr {
    return this.#nest(() => {
      const start = this.#next().span;
      const entries: (Property | Spread)[] = [];
      while (!this.#punct('}')) {
        const t = this.#tok;
        if (this.#punct('...')) {
          this.#next();
          const arg = this.#expr();
          entries.push({ type: 'Spread', arg, span: this.#span(t.span) });
        } else if (t.type === 'ident' || t.type === 'string' || t.type === 'keyword' || t.type === 'number') {
          this.#next();
          if (t.type === 'ident' && (this.#punct(',') || this.#punct('}'))) {
            // Shorthand { name } for { name: name }.
            entries.push({ type: 'Property', key: t.value, keySpan: t.span, value: { type: 'Identifier', name: t.value, span: t.span } });
          } else {
            this.#expectPunct(':', `after the key "${t.value}"`);
            entries.push({ type: 'Property', key: t.value, keySpan: t.span, value: this.#expr() });
          }
        } else {
          this.#fail('DSL_S201', `expected a key, "..." or "}" in the object, found ${describe(t)}`);
        }
        if (this.#punct(',')) this.#next();
        else if (!this.#punct('}')) this.#fail('DSL_S201', `expected "," or "}" in the object, found ${describe(this.#tok)}`);
      }
      this.#next();
      return this.#mk({ type: 'Object', entries, span: this.#span(start) });
    });
  }

  #array(): Expr {
    return this.#nest(() => {
      const start = this.#next().span;
      const items: (Expr | Spread)[] = [];
      while (!this.#punct(']')) {
        const t = this.#tok;
        if (this.#punct('...')) {
          this.#next();
          items.push({ type: 'Spread', arg: this.#expr(), span: this.#span(t.span) });
        } else if (t.type === 'eof') {
          this.#fail('DSL_S201', 'expected "]" to close the array');
        } else {
          items.push(this.#expr());
        }
        if (this.#punct(',')) this.#next();
        else if (!this.#punct(']')) this.#fail('DSL_S201', `expected "," or "]" in the array, found ${describe(this.#tok)}`);
      }
      this.#next();
      return this.#mk({ type: 'Array', items, span: this.#span(start) });
    });
  }

  /** After `when`: an object literal is a JSON-Logic rule. */
  #jsonLogicObject(): Expr {
    const obj = this.#object();
    return { type: 'JsonLogic', rule: toJson(obj, this), span: obj.span };
  }

  failAt(code: DslErrorCode, message: string, span: Span): never {
    this.#fail(code, message, span);
  }
}

/** The direct sub-expressions of a node. */
export function exprChildren(e: Expr): Expr[] {
  switch (e.type) {
    case 'Literal':
    case 'Identifier':
    case 'JsonLogic':
      return [];
    case 'Member':
      return [e.object];
    case 'Index':
      return [e.object, e.index];
    case 'Call':
      return [...e.args];
    case 'Lambda':
      return [e.body];
    case 'Unary':
      return [e.arg];
    case 'Binary':
    case 'Logical':
      return [e.left, e.right];
    case 'Conditional':
      return [e.test, e.then, e.otherwise];
    case 'Object':
      return e.entries.map((x) => (x.type === 'Spread' ? x.arg : x.value));
    case 'Array':
      return e.items.map((x) => (x.type === 'Spread' ? x.arg : x));
  }
}

/** A constant expression (JSON written in the DSL) as a JSON value. */
function toJson(e: Expr, p: Parser): unknown {
  switch (e.type) {
    case 'Literal':
      return e.value;
    case 'Array':
      return e.items.map((i) => (i.type === 'Spread' ? p.failAt('DSL_S208', 'a JSON-Logic rule cannot spread', i.span) : toJson(i, p)));
    case 'Object': {
      const out: Record<string, unknown> = {};
      for (const en of e.entries) {
        if (en.type === 'Spread') p.failAt('DSL_S208', 'a JSON-Logic rule cannot spread', en.span);
        else if (en.value.type === 'Identifier' && en.value.span === en.keySpan) p.failAt('DSL_S208', 'a JSON-Logic rule is JSON: write "key": value', en.keySpan);
        else Object.defineProperty(out, en.key, { value: toJson(en.value, p), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default:
      p.failAt('DSL_S208', 'a JSON-Logic rule is JSON: only literals, arrays and objects (read the event with {"var": "path"})', e.span);
  }
}

function describe(t: Token): string {
  switch (t.type) {
    case 'eof':
      return 'the end of the mapping';
    case 'string':
      return `the string ${JSON.stringify(t.value.length > 30 ? `${t.value.slice(0, 30)}…` : t.value)}`;
    case 'number':
      return `the number ${t.value}`;
    case 'keyword':
      return `"${t.value}"`;
    case 'ident':
      return `the name "${t.value}"`;
    default:
      return `"${t.value}"`;
  }
}
