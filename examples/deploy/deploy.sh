#!/bin/sh
# deploy.sh: deploy acme/tool the way most scripts start out. It works on a
# good day. On the day github.com is down, and this deploy is the fix, it
# depends on github.com three times:
#   hidden:    servicectl quietly checks updates.example.net for a new version
#   direct:    the release is downloaded from github.com
#   transient: api.internal's /v1/deployments checks the release on github.com
set -eu
PATH=$(cd "$(dirname "$0")" && pwd):$PATH

echo "deploy: installed: $(servicectl status)"

version=$(curl -fsS --max-time 10 http://github.com/acme/tool/releases/latest)
echo "deploy: latest release on github.com: $version"
curl -fsS --max-time 10 -o tool.tar.gz \
	"http://github.com/acme/tool/releases/download/$version/tool-${version#v}.tar.gz"

servicectl install tool.tar.gz

echo "deploy: recording the deployment with api.internal"
curl -fsS --max-time 10 -X POST "http://api.internal/v1/deployments?tool=acme/tool&version=$version"
echo "deploy: done"
