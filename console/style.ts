/** The console's style sheet: plain, readable, high contrast (served as /app.css). */
export const CONSOLE_STYLE = `
:root { font-family: system-ui, sans-serif; color: #1a1a1a; background: #fff; line-height: 1.4; }
body { margin: 0; }
a { color: #0b57a4; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 1; }
header { display: flex; align-items: center; gap: 24px; padding: 8px 16px; background: #14213d; }
header .brand { color: #fff; font-weight: 700; }
header ul { display: flex; gap: 4px; list-style: none; margin: 0; padding: 0; flex-wrap: wrap; }
header a { color: #fff; text-decoration: none; padding: 6px 10px; border-radius: 4px; display: inline-block; }
header a[aria-current="page"] { background: #fff; color: #14213d; }
main { padding: 8px 16px 32px; max-width: 1200px; }
main:focus { outline: none; }
h1 { font-size: 1.5rem; }
h2 { font-size: 1.2rem; margin-top: 1.2em; }
:focus-visible { outline: 3px solid #f0a202; outline-offset: 2px; }
button { font: inherit; padding: 5px 12px; margin: 2px 4px 2px 0; border: 1px solid #0b57a4; background: #0b57a4;
  color: #fff; border-radius: 4px; cursor: pointer; }
button[disabled] { background: #e6e6e6; color: #555; border-color: #999; cursor: not-allowed; }
button.danger { background: #a4161a; border-color: #a4161a; }
button.link { background: none; border: none; color: #0b57a4; text-decoration: underline; padding: 0; }
input, select, textarea { font: inherit; padding: 4px 6px; border: 1px solid #666; border-radius: 3px; }
input[aria-invalid="true"], textarea[aria-invalid="true"] { border-color: #a4161a; border-width: 2px; }
.field { display: flex; flex-direction: column; gap: 2px; min-width: 12rem; }
.field label { font-weight: 600; font-size: 0.9rem; }
.hint { color: #555; }
.field-error { color: #a4161a; font-weight: 600; }
.filters { display: flex; gap: 12px; align-items: flex-end; flex-wrap: wrap; margin-bottom: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 10px 16px; margin: 8px 0; }
.editor { border: 1px solid #bbb; border-radius: 6px; padding: 8px 16px 16px; margin: 12px 0; background: #fafafa; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f0f0f0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85rem; font-weight: 600;
  background: #e8e8e8; color: #1a1a1a; }
.badge.allowed, .badge.allow, .badge.provisioned { background: #d7f0dd; color: #0f5223; }
.badge.blocked, .badge.deny, .badge.denied { background: #fbdcda; color: #7d1410; }
.badge.failed { background: #fde9c8; color: #5c3a00; }
.badge.admin { background: #dde6f8; color: #213d7a; }
.reason { font-family: ui-monospace, monospace; }
.error { background: #fbdcda; color: #5e0f0b; border: 1px solid #a4161a; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.notice { background: #e3f1e6; color: #0f3d1b; border: 1px solid #1b7a3a; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.notice ul { margin: 0; padding-left: 1.2em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr)); gap: 12px; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: 4px 12px 12px; min-width: 0; overflow-wrap: anywhere; }
.card.wide { grid-column: 1 / -1; }
pre { background: #f4f4f4; padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.85rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
dt { font-weight: 600; }
dd { margin: 0; }
.timeline { list-style: none; padding-left: 0; border-left: 3px solid #ccc; }
.timeline li { padding: 4px 0 4px 12px; }
.versions { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.conflict { border: 2px solid #a35200; padding: 8px 12px; border-radius: 6px; background: #fff7ec; }
.toolbar { margin: 8px 0; }
.pager { margin-top: 8px; }
.quota { display: inline-flex; align-items: center; gap: 8px; }
meter { width: 12rem; height: 1rem; }
progress { width: 16rem; }
.chart svg { max-width: 100%; }
.legend { list-style: none; padding: 0; display: flex; gap: 16px; flex-wrap: wrap; }
.warnings { color: #5c3a00; }
`;
