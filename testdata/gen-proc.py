import os, ipaddress, shutil
root='proc'
shutil.rmtree(root, ignore_errors=True); shutil.rmtree('cgroup', ignore_errors=True)
def hexaddr(a):
    ip=ipaddress.ip_address(a)
    b=ip.packed
    out=''
    for i in range(0,len(b),4):
        out+=b[i:i+4][::-1].hex().upper()
    return out
def ap(a,p): return '%s:%04X'%(hexaddr(a),p)
HDR_TCP='  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
HDR_UDP='  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n'
def tcpline(i,l,r,st,ino): return '%4d: %s %s %02X 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n'%(i,ap(*l),ap(*r),st,ino)
def udpline(i,l,r,st,ino): return '%5d: %s %s %02X 00000000:00000000 00:00000000 00000000     0        0 %d 2 0000000000000000 0\n'%(i,ap(*l),ap(*r),st,ino)
HOST='net:[4026531992]'; BR='net:[4026532500]'
IDS={'web':'a'*64,'api':'b'*64,'worker':'c'*64,'sidecar':'d'*64}
def proc(pid,comm,ns,cid,fds):
    d=os.path.join(root,str(pid)); os.makedirs(d+'/ns'); os.makedirs(d+'/fd'); os.makedirs(d+'/net')
    os.symlink(ns,d+'/ns/net')
    open(d+'/comm','w').write(comm+'\n')
    open(d+'/cgroup','w').write('9:name=systemd:/docker/%s\n4:pids:/docker/%s\n0::/\n'%(cid,cid))
    for n,t in fds.items(): os.symlink(t,'%s/fd/%d'%(d,n))
def sk(i): return 'socket:[%d]'%i
# host namespace tables (read through any host-ns pid)
tcp=[tcpline(0,('0.0.0.0',8080),('0.0.0.0',0),0x0A,1001),
     tcpline(1,('127.0.0.1',9090),('0.0.0.0',0),0x0A,2001),
     tcpline(2,('127.0.0.1',8080),('127.0.0.1',41000),0x01,1010),  # web side of api->web
     tcpline(3,('127.0.0.1',41000),('127.0.0.1',8080),0x01,2010),  # api client
     tcpline(4,('10.0.0.5',8080),('192.168.1.50',51234),0x01,1011), # outside client
     tcpline(5,('127.0.0.1',8080),('127.0.0.1',39000),0x06,0),     # TIME_WAIT, inode 0
     '   6: 0100007F:ZZZZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77\n', # malformed
     tcpline(7,('127.0.0.1',43000),('127.0.0.1',8443),0x01,4010),  # sidecar client via v4 to dual-stack
     tcpline(8,('172.18.0.1',8080),('172.18.0.2',40000),0x01,1012), # web side of worker->web via gateway
     tcpline(9,('127.0.0.1',9090),('127.0.0.1',44000),0x01,2011),  # api side of a host process's connection
     tcpline(10,('127.0.0.1',44000),('127.0.0.1',9090),0x01,9999), # host process (not a container)
     tcpline(11,('0.0.0.0',22),('0.0.0.0',0),0x0A,9998),           # sshd, not ours
]
tcp6=[tcpline(0,('::',8443),('::',0),0x0A,1002),
      tcpline(1,('::ffff:127.0.0.1',7000),('::',0),0x0A,1003),
      tcpline(2,('::1',42000),('::1',8443),0x01,2012),             # api client over ::1
      tcpline(3,('::1',8443),('::1',42000),0x01,1013),             # web server side
      tcpline(4,('::ffff:127.0.0.1',8443),('::ffff:127.0.0.1',43000),0x01,1014), # web side of sidecar, mapped
]
udp=[udpline(0,('0.0.0.0',5353),('0.0.0.0',0),0x07,1004),
     udpline(1,('0.0.0.0',6000),('0.0.0.0',0),0x07,4001),
     udpline(2,('10.0.0.5',51000),('10.0.0.1',53),0x01,2013),     # connected UDP: not a listener
     '  3: 00000000:1234 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 55 2\n', # short line (procfs panics on it)
]
udp6=[udpline(0,('::1',5000),('::',0),0x07,2002)]
proc(100,'web',HOST,IDS['web'],{0:'/dev/null',1:'pipe:[5]',3:sk(1001),4:sk(1002),5:sk(1003),6:sk(1004),7:sk(1010),8:sk(1011),9:sk(1012),10:sk(1013),11:sk(1014)})
proc(200,'api',HOST,IDS['api'],{0:'/dev/null',3:sk(2001),4:sk(2011)})
proc(201,'api-worker',HOST,IDS['api'],{3:sk(2010),4:sk(2012),5:sk(2013),6:sk(2002)})
proc(300,'worker',BR,IDS['worker'],{3:sk(3001),4:sk(3010)})
proc(400,'sidecar',HOST,IDS['sidecar'],{3:sk(4001),4:sk(4010)})
for pid in (100,200,201,400):
    d='%s/%d/net/'%(root,pid)
    open(d+'tcp','w').write(HDR_TCP+''.join(tcp)); open(d+'tcp6','w').write(HDR_TCP+''.join(tcp6))
    open(d+'udp','w').write(HDR_UDP+''.join(udp)); open(d+'udp6','w').write(HDR_UDP+''.join(udp6))
d='%s/300/net/'%root
open(d+'tcp','w').write(HDR_TCP+tcpline(0,('0.0.0.0',80),('0.0.0.0',0),0x0A,3001)+tcpline(1,('172.18.0.2',40000),('172.18.0.1',8080),0x01,3010))
open(d+'udp','w').write(HDR_UDP)   # no tcp6/udp6: IPv6 disabled in this namespace
os.makedirs(root+'/sys/net/ipv6'); open(root+'/sys/net/ipv6/bindv6only','w').write('0\n')
for name,pids in (('web',[100]),('api',[200,201]),('worker',[300]),('sidecar',[400])):
    c='cgroup/pids/docker/%s'%IDS[name]; os.makedirs(c); open(c+'/cgroup.procs','w').write(''.join('%d\n'%p for p in pids))
