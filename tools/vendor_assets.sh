#!/usr/bin/env bash
# Re-create _vendor/ from the npm registry (see _vendor/README.md). Needs npm.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
(cd "$tmp" && npm pack -q mathjax@3.2.2 requirejs@2.3.8 @jupyter-widgets/html-manager@1.0.15 reveal.js@4.6.1 jquery@3.7.1 >/dev/null)
for f in "$tmp"/*.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
mj="$tmp/mathjax-3.2.2/package"; rq="$tmp/requirejs-2.3.8/package"; hm="$tmp/jupyter-widgets-html-manager-1.0.15/package/dist"
rv="$tmp/reveal.js-4.6.1/package"; jq="$tmp/jquery-3.7.1/package"
rm -rf _vendor/mathjax _vendor/html-manager _vendor/require.js _vendor/reveal.js _vendor/jquery.min.js
mkdir -p _vendor/mathjax/output/chtml/fonts _vendor/html-manager
cp "$mj/es5/tex-chtml-full.js" "$mj/LICENSE" _vendor/mathjax/
cp -r "$mj/es5/output/chtml/fonts/woff-v2" _vendor/mathjax/output/chtml/fonts/
cp "$rq/require.js" _vendor/require.js
cp "$hm/embed-amd.js" "$hm/embed.js.LICENSE.txt" "$hm"/*.{woff2,woff,eot,ttf,svg} _vendor/html-manager/
mkdir -p _vendor/reveal.js/dist/theme/fonts _vendor/reveal.js/plugin/notes
cp "$rv/dist/reveal.css" "$rv/dist/reveal.js" _vendor/reveal.js/dist/
cp "$rv/dist/theme/white.css" _vendor/reveal.js/dist/theme/
cp -r "$rv/dist/theme/fonts/source-sans-pro" _vendor/reveal.js/dist/theme/fonts/
cp "$rv/plugin/notes/notes.js" _vendor/reveal.js/plugin/notes/
cp "$rv/LICENSE" _vendor/reveal.js/
cp "$jq/dist/jquery.min.js" _vendor/
rm -rf "$tmp"
echo "vendored: $(du -sh _vendor | cut -f1)"
