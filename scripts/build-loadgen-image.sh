#!/usr/bin/env bash
# Build the load generator's image, push it to ECR and print its URI (the stack's
# LoadgenImageUri parameter). Needs Docker, the AWS CLI and credentials for the target account.
#
#   scripts/build-loadgen-image.sh [--region us-east-1] [--repository rightsizer-loadgen] [--tag 0.1.0]
#
# Repository names without '/' (the template derives the repository ARN from the URI).
# Not run by the test suite (no Docker daemon or AWS account there): see docs/aws.md.
set -euo pipefail
cd "$(dirname "$0")/.."

region="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
repository="rightsizer-loadgen"
version="$(python3 -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])' 2>/dev/null || echo 0)"
# Tags are immutable in the repository this script creates: one tag per commit.
tag="${version}-$(git rev-parse --short HEAD 2>/dev/null || date +%Y%m%d%H%M%S)"
platform="linux/amd64"  # the task definition's CpuArchitecture is X86_64

while [[ $# -gt 0 ]]; do
  case "$1" in
    --region) region="$2"; shift 2 ;;
    --repository) repository="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

for tool in docker aws; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done

account="$(aws sts get-caller-identity --query Account --output text)"
registry="${account}.dkr.ecr.${region}.amazonaws.com"
uri="${registry}/${repository}:${tag}"

if ! aws ecr describe-repositories --region "$region" --repository-names "$repository" >/dev/null 2>&1; then
  echo "creating ECR repository $repository in $region" >&2
  aws ecr create-repository --region "$region" --repository-name "$repository" \
    --image-scanning-configuration scanOnPush=true --image-tag-mutability IMMUTABLE >/dev/null
fi

aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry" >&2
DOCKER_BUILDKIT=1 docker build --platform "$platform" -f loadgen_container/Dockerfile -t "$uri" . >&2
docker push "$uri" >&2

# The digest pins the exact image the stack will run.
digest="$(aws ecr describe-images --region "$region" --repository-name "$repository" \
  --image-ids imageTag="$tag" --query 'imageDetails[0].imageDigest' --output text)"
echo "${registry}/${repository}@${digest}"
