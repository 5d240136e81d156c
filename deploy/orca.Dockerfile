# The orca image: every orca process (controller, agent, proxy, reconcile) runs from it. The base is
# orca/node-base:<hash> (busybox + the host's Node.js binary and its libraries), imported by
# scripts/build-images.sh, which also assembles this small build context.
ARG BASE
FROM ${BASE}
WORKDIR /orca
ENV NODE_ENV=production
COPY package.json ./
COPY node_modules ./node_modules
COPY scripts ./scripts
COPY dist ./dist
ENTRYPOINT ["node", "--enable-source-maps", "--import", "./scripts/register.mjs", "dist/apps/cli/src/main.js"]
