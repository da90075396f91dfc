/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * clone_scale.c - settling a pool's source under many clones, at the
 * sizes users give: a source of SIZE (1G, 1T) filled with MiB of a page
 * file, NCLONES clones, each of which writes one page of its own in a
 * window of its own (so that many windows keep their layout), then
 * `recompress settle` of the source; times, mem_used before and after,
 * and the source and up to 16 clones read back and compared.
 *
 *     cc -O2 -std=c11 -Iinclude bench/clone_scale.c -Lbuild -luzram \
 *        -Wl,-rpath,$PWD/build -o /tmp/clone_scale
 *     /tmp/clone_scale PAGEFILE MIB NCLONES SIZE
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "uzram.h"
#define PAGE 4096
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static unsigned long long dbg(struct uzram *d, const char *name){char buf[4096],key[64];uzram_attr_show(d,"debug_stat",buf,sizeof buf);snprintf(key,sizeof key,"%s: ",name);char*a=strstr(buf,key);return a?strtoull(a+strlen(key),0,10):0;}
static unsigned long long mm(struct uzram *d,int k){char b[512];uzram_attr_show(d,"mm_stat",b,sizeof b);char*p=b;unsigned long long v=0;for(int i=0;i<=k;i++)v=strtoull(p,&p,10);return v;}
int main(int argc,char**argv){
  FILE*f=fopen(argv[1],"rb"); size_t n=(size_t)atol(argv[2])<<20; unsigned nc=atoi(argv[3]);
  char*data=malloc(n); size_t got=fread(data,1,n,f); n=got/PAGE*PAGE;
  struct uzram_config cfg; uzram_config_init(&cfg); cfg.disksize=0;
  struct uzram_pool*pool; if(uzram_pool_create(&cfg,&pool)){printf("pool: %s\n",uzram_last_error());return 1;}
  struct uzram*src; uzram_pool_add(pool,&src);
  if(uzram_attr_store(src,"disksize",argv[4],strlen(argv[4]))){printf("disksize: %s\n",uzram_last_error());return 1;}
  double t=now(); if(uzram_write(src,data,n,0)){printf("w %s\n",uzram_last_error());return 1;}
  printf("write %zu MiB %.2f s, mem_used %llu\n",n>>20,now()-t,mm(src,2));
  struct uzram**c=calloc(nc,sizeof*c); t=now();
  for(unsigned i=0;i<nc;i++) if(uzram_clone(src,&c[i])){printf("clone %u: %s\n",i,uzram_last_error());return 1;}
  printf("%u clones %.2f s, mem_used %llu\n",nc,now()-t,mm(src,2));
  /* each clone writes one page of its own, in a different window */
  char pg[PAGE]; for(unsigned i=0;i<nc;i++){memset(pg,i&0xff,PAGE);pg[0]=1;pg[1]=(char)(i>>8); uzram_write(c[i],pg,PAGE,(uint64_t)(i*8%(n/PAGE))*PAGE);}
  t=now(); if(uzram_attr_store(src,"recompress","settle",6)){printf("settle: %s\n",uzram_last_error());return 1;}
  double ts=now()-t; uzram_compact(src);
  printf("settle %.2f s, settle_groups %llu settle_pages %llu, mem_used %llu\n",ts,dbg(src,"settle_groups"),dbg(src,"settle_pages"),mm(src,2));
  char*buf=malloc(n); t=now();
  if(uzram_read(src,buf,n,0)||memcmp(buf,data,n)){printf("source differs\n");return 1;}
  for(unsigned i=0;i<nc;i+= (nc>16? nc/16:1)){ if(uzram_read(c[i],buf,n,0)){printf("read clone\n");return 1;}
    uint64_t o=(uint64_t)(i*8%(n/PAGE))*PAGE; memset(pg,i&0xff,PAGE);pg[0]=1;pg[1]=(char)(i>>8);
    if(memcmp(buf+o,pg,PAGE)){printf("clone %u own page differs\n",i);return 1;}
    memcpy(buf+o,data+o,PAGE); if(memcmp(buf,data,n)){printf("clone %u differs\n",i);return 1;} }
  printf("verified source and %u clones in %.2f s; check %d\n",nc>16?16:nc,now()-t,uzram_check(src));
  return 0;}
