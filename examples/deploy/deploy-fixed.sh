#!/bin/sh
# deploy-fixed.sh: the same deploy, without github.com anywhere on its path:
#   the release comes from mirror.internal, which keeps the same files;
#   servicectl's update check is turned off (SERVICECTL_NO_UPDATE_CHECK=1);
#   the deployment is recorded through api.internal's /v2/deployments, which
#   checks the release on mirror.internal instead of github.com.
# The fence cannot see inside api.internal: that last point is what a human
# confirmed when reviewing the internal destinations the report listed.
set -eu
PATH=$(cd "$(dirname "$0")" && pwd):$PATH
export SERVICECTL_NO_UPDATE_CHECK=1

echo "deploy: installed: $(servicectl status)"

version=$(curl -fsS --max-time 10 http://mirror.internal/acme/tool/releases/latest)
echo "deploy: latest release on mirror.internal: $version"
curl -fsS --max-time 10 -o tool.tar.gz \
	"http://mirror.internal/acme/tool/releases/download/$version/tool-${version#v}.tar.gz"

servicectl install tool.tar.gz

echo "deploy: recording the deployment with api.internal"
curl -fsS --max-time 10 -X POST "http://api.internal/v2/deployments?tool=acme/tool&version=$version"
echo "deploy: done"
